// The vitest settings every package shares. Each package's vitest.config.ts is `export default
// awaVitestConfig(import.meta.dirname)` (plus anything of its own).
import { join } from "node:path"
import { defineConfig, type ViteUserConfig } from "vitest/config"

// vitest 5's reporter calls Map.groupBy (Node >= 21) when it prints failures; on Node 20 it would crash
// instead of showing them. This module is evaluated in the main vitest process, where the reporter runs.
if (typeof (Map as { groupBy?: unknown }).groupBy !== "function") {
  Object.defineProperty(Map, "groupBy", {
    configurable: true,
    writable: true,
    value: <K, T>(items: Iterable<T>, key: (item: T, index: number) => K): Map<K, T[]> => {
      const groups = new Map<K, T[]>()
      let index = 0
      for (const item of items) {
        const k = key(item, index++)
        const group = groups.get(k)
        if (group) group.push(item)
        else groups.set(k, [item])
      }
      return groups
    },
  })
}

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
