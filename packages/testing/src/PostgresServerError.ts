/**
 * The error raised when a Postgres server for tests cannot be chosen, reached or started.
 */
import { Data } from "effect"

/**
 * Why a test Postgres server could not be provided:
 * - `InvalidProvider`: `AWA_TEST_PROVIDER` (or the `provider` option) names no known provider.
 * - `MissingDatabaseUrl`: the `database-url` provider was forced but no URL was given.
 * - `InvalidDatabaseUrl`: the URL is not a `postgres://` / `postgresql://` URL.
 * - `Unreachable`: the server behind the URL refused the connection or the query.
 * - `NoContainerRuntime`: the `container` provider was forced but no container runtime answered.
 * - `ContainerStartFailed`: the container runtime answered but the Postgres container did not start.
 * - `EmbeddedStartFailed`: the embedded server failed to initialise or died before accepting connections.
 */
export type PostgresServerErrorReason =
  | "InvalidProvider"
  | "MissingDatabaseUrl"
  | "InvalidDatabaseUrl"
  | "Unreachable"
  | "NoContainerRuntime"
  | "ContainerStartFailed"
  | "EmbeddedStartFailed"

/**
 * A typed failure to provide a Postgres server for tests; its message says what happened and what to
 * do next, and `dataDirectory` / `logTail` carry the embedded server's evidence when it died.
 */
export class PostgresServerError extends Data.TaggedError("PostgresServerError")<{
  readonly reason: PostgresServerErrorReason
  readonly message: string
  readonly dataDirectory?: string
  readonly logTail?: string
  readonly cause?: unknown
}> {}
