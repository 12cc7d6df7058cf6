// The vitest settings every package shares. Each package's vitest.config.ts is `export default
// awaVitestConfig(import.meta.dirname)` (plus anything of its own).
import { join } from "node:path"
import { defineConfig, type ViteUserConfig } from "vitest/config"
import { installMapGroupBy } from "./packages/testing/src/internal/MapGroupBy.js"

// Node 20: vitest 5 prints failures with Map.groupBy (Node >= 21). The global setup installs it too; this
// covers packages that run without it (postgres: false).
installMapGroupBy()

const testingSrc = join(import.meta.dirname, "packages", "testing", "src")

/**
 * The shared config: node environment, forked workers with files in parallel, generous timeouts for
 * real Postgres, and one Postgres server per run from @awa/testing's global setup.
 *
 * Packages below @awa/testing in the dependency graph (migrator, runtime) cannot depend on it without a
 * cycle, so their tests import its source as `@awa/testing-src/<module>.js` through this alias (and `paths` in
 * their tsconfig.json) instead of a package.json edge.
 */
export const awaVitestConfig = (
  packageDir: string,
  options: {
    readonly aliasTesting?: boolean
    /** Start the run's Postgres server (default true); false for packages whose tests need no database. */
    readonly postgres?: boolean
  } = {},
): ViteUserConfig =>
  defineConfig({
    root: packageDir,
    resolve: options.aliasTesting
      ? { alias: [{ find: /^@awa\/testing-src\/(.*)\.js$/, replacement: `${testingSrc}/$1.ts` }] }
      : {},
    test: {
      environment: "node",
      include: ["test/**/*.test.ts"],
      pool: "forks",
      fileParallelism: true,
      testTimeout: 60_000,
      hookTimeout: 120_000,
      globalSetup: options.postgres === false ? [] : [join(testingSrc, "vitest", "globalSetup.ts")],
      // The JSON report lets `npm test` print one summary line for the whole monorepo.
      reporters: ["default", ["json", { outputFile: join(packageDir, ".vitest-results.json") }]],
    },
  })

/**
 * The aliases of the `pnpm mutation` configs (scripts/mutation.mjs): @awa/runtime (and, with
 * `relativeRuntimeSrc`, a runtime test's own `../src/*.js` imports) resolved to the scratch copy of the runtime's
 * sources in AWA_MUTATION_RUNTIME_SRC, and the migrator's bundled migrations (the `./internal/
 * bundledMigrations.generated.js` import of its built modules) to the module in AWA_MUTATION_MIGRATIONS_BUNDLE.
 */
export const mutationAliases = (
  options: { readonly relativeRuntimeSrc?: boolean } = {},
): Array<{ find: RegExp; replacement: string }> => {
  const runtimeSrc = process.env.AWA_MUTATION_RUNTIME_SRC
  const bundle = process.env.AWA_MUTATION_MIGRATIONS_BUNDLE
  if (runtimeSrc === undefined || runtimeSrc === "" || bundle === undefined || bundle === "") {
    throw new Error(
      "vitest.mutation.config.ts is for `pnpm mutation` (scripts/mutation.mjs), which sets AWA_MUTATION_RUNTIME_SRC and AWA_MUTATION_MIGRATIONS_BUNDLE.",
    )
  }
  return [
    { find: /^@awa\/runtime$/, replacement: `${runtimeSrc}/index.ts` },
    { find: /^@awa\/runtime\/(.*)$/, replacement: `${runtimeSrc}/$1.ts` },
    ...(options.relativeRuntimeSrc
      ? [{ find: /^(?:\.\.\/)+src\/(.*)\.js$/, replacement: `${runtimeSrc}/$1.ts` }]
      : []),
    { find: /^(?:\.\.?\/)+internal\/bundledMigrations\.generated\.js$/, replacement: bundle },
  ]
}
