/**
 * A vitest global setup that starts ONE Postgres server per test run and shares it with every test
 * file. Use it in `vitest.config.ts`:
 *
 * ```ts
 * export default defineConfig({ test: { globalSetup: ["@awa/testing/vitest/globalSetup"] } })
 * ```
 */
import type { TestProject } from "vitest/node"
import { installMapGroupBy } from "../internal/MapGroupBy.js"
import { startPostgres } from "../PostgresServer.js"
import { sweepTestDatabases } from "../TestDatabases.js"
import { postgresAdminUrlKey } from "./ProvidedPostgres.js"

// Node 20: keeps vitest's failure reports readable (see MapGroupBy).
installMapGroupBy()

/**
 * Starts the run's Postgres server with {@link startPostgres} (so `DATABASE_URL`, `AWA_TEST_PROVIDER` and
 * `AWA_TEST_PG_IMAGE` apply), on a persistent `DATABASE_URL` server first drops the test databases that
 * killed runs left behind ({@link sweepTestDatabases}), provides its admin URL to test files under {@link postgresAdminUrlKey}, and
 * returns the teardown that stops it when the run ends.
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres()
  if (server.provider === "database-url") {
    // A persistent server outlives runs: drop what killed runs left there before adding more.
    const { dropped } = await sweepTestDatabases(server.adminUrl)
    if (dropped.length > 0) {
      process.stderr.write(
        `awa-testing: dropped ${dropped.length} test database(s) left behind by runs that were killed: ${dropped.join(", ")}\n`,
      )
    }
  }
  project.provide(postgresAdminUrlKey, server.adminUrl)
  return () => server.stop()
}
