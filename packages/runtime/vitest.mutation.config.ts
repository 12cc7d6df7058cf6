// The vitest config `pnpm mutation` (scripts/mutation.mjs) runs the runtime's own tests with, when a mistake
// names them as judges (the ring and counter tests): the runtime's config, with its sources (the tests' ../src
// imports and @awa/runtime from @awa/testing's sources) resolved to the scratch copy in which the mistake was
// applied, and the migrator's bundled SQL to the module rendered from the scratch copy of migrations/.
import type { ViteUserConfig } from "vitest/config"
import { awaVitestConfig, mutationAliases } from "../../vitest.shared.js"

const resultsFile = process.env.AWA_MUTATION_RESULTS

const base = awaVitestConfig(import.meta.dirname, { aliasTesting: true })
const baseAliases = (base.resolve?.alias ?? []) as Array<{ find: RegExp; replacement: string }>

const config: ViteUserConfig = {
  ...base,
  resolve: { alias: [...baseAliases, ...mutationAliases({ relativeRuntimeSrc: true })] },
  test: {
    ...base.test,
    reporters: resultsFile === undefined ? ["dot"] : ["dot", ["json", { outputFile: resultsFile }]],
  },
}

export default config
