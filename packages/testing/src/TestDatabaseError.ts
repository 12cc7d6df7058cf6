/**
 * The error raised when test databases cannot be named, created, cloned, prepared or dropped.
 */
import { Data } from "effect"

/**
 * Why a test-database operation failed:
 * - `InvalidName`: a database name is not a lowercase identifier of at most 63 bytes.
 * - `InvalidMode`: `AWA_TEST_DB_MODE` (or the `mode` option) is neither `single` nor `split`.
 * - `InvalidUrl`: an admin URL is not a `postgres://` / `postgresql://` URL.
 * - `TemplateNotFound`: a clone was asked of a template database that does not exist.
 * - `TemplatePrepareFailed`: a template's `prepare` hook threw; the half-prepared database was dropped.
 * - `CloneFailed`: `CREATE DATABASE ... TEMPLATE` kept failing (e.g. the template stayed in use).
 * - `DatabaseFailed`: creating or dropping a database failed.
 */
export type TestDatabaseErrorReason =
  | "InvalidName"
  | "InvalidMode"
  | "InvalidUrl"
  | "TemplateNotFound"
  | "TemplatePrepareFailed"
  | "CloneFailed"
  | "DatabaseFailed"

/**
 * A typed failure of a test-database operation; its message names the database involved and says what
 * to do next.
 */
export class TestDatabaseError extends Data.TaggedError("TestDatabaseError")<{
  readonly reason: TestDatabaseErrorReason
  readonly message: string
  readonly database?: string
  readonly cause?: unknown
}> {}
