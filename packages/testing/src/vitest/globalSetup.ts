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
import { postgresAdminUrlKey } from "./ProvidedPostgres.js"

// Node 20: keeps vitest's failure reports readable (see MapGroupBy).
installMapGroupBy()

/**
 * Starts the run's Postgres server with {@link startPostgres} (so `DATABASE_URL`, `AWA_TEST_PROVIDER` and
 * `AWA_TEST_PG_IMAGE` apply), provides its admin URL to test files under {@link postgresAdminUrlKey}, and
 * returns the teardown that stops it when the run ends.
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres()
  project.provide(postgresAdminUrlKey, server.adminUrl)
  return () => server.stop()
}
