// The vitest config `pnpm mutation` (scripts/mutation.mjs) runs the contract suite with: the shared config,
// with @awa/runtime resolved to a scratch copy of its sources (AWA_MUTATION_RUNTIME_SRC) in which one
// deliberate mistake was applied, so no rebuild is needed per mistake and the real sources are never touched.
import type { ViteUserConfig } from "vitest/config"
import { awaVitestConfig } from "../../vitest.shared.js"

const runtimeSrc = process.env.AWA_MUTATION_RUNTIME_SRC
if (runtimeSrc === undefined || runtimeSrc === "") {
  throw new Error(
    "vitest.mutation.config.ts is for `pnpm mutation` (scripts/mutation.mjs), which sets AWA_MUTATION_RUNTIME_SRC.",
  )
}
const resultsFile = process.env.AWA_MUTATION_RESULTS

const base = awaVitestConfig(import.meta.dirname)

const config: ViteUserConfig = {
  ...base,
  resolve: {
    alias: [
      { find: /^@awa\/runtime$/, replacement: `${runtimeSrc}/index.ts` },
      { find: /^@awa\/runtime\/(.*)$/, replacement: `${runtimeSrc}/$1.ts` },
    ],
  },
  test: {
    ...base.test,
    reporters: resultsFile === undefined ? ["dot"] : ["dot", ["json", { outputFile: resultsFile }]],
  },
}

export default config
