// The vitest config `pnpm mutation` (scripts/mutation.mjs) runs the contract suite with: the shared config,
// with @awa/runtime resolved to a scratch copy of its sources (AWA_MUTATION_RUNTIME_SRC) and the migrator's
// bundled SQL to a module rendered from a scratch copy of migrations/ (AWA_MUTATION_MIGRATIONS_BUNDLE), in
// which one deliberate mistake was applied, so no rebuild is needed per mistake and the real sources are
// never touched.
import type { ViteUserConfig } from "vitest/config"
import { awaVitestConfig, mutationAliases } from "../../vitest.shared.js"

const resultsFile = process.env.AWA_MUTATION_RESULTS

const base = awaVitestConfig(import.meta.dirname)

const config: ViteUserConfig = {
  ...base,
  resolve: { alias: mutationAliases() },
  test: {
    ...base.test,
    reporters: resultsFile === undefined ? ["dot"] : ["dot", ["json", { outputFile: resultsFile }]],
  },
}

export default config
