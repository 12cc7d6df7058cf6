/**
 * How the vitest global setup hands the run's Postgres server to test files: the `provide`/`inject` key
 * and its type on vitest's `ProvidedContext`.
 */

/** The `provide`/`inject` key under which `@awa/testing/vitest/globalSetup` shares the server's admin URL. */
export const postgresAdminUrlKey = "awaPostgresAdminUrl" as const

declare module "vitest" {
  /** Values the global setup of `@awa/testing` provides to test files. */
  export interface ProvidedContext {
    /** The admin URL of the test run's Postgres server, set by `@awa/testing/vitest/globalSetup`. */
    awaPostgresAdminUrl: string
  }
}
