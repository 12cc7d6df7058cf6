// How CLI commands reach the primary database: the URL from --database-url or DATABASE_URL, a small pool
// from the runtime, and database failures turned into the errors (and exit codes) an operator can act on.
import { DatabaseUnreachable, InvalidDatabaseUrl, MissingDatabaseUrl } from "@awa/model/MigratorError"
import { DatabaseError } from "@awa/runtime/DatabaseError"
import { createPool, type PgPool } from "@awa/runtime/PgExecutor"
import { Data } from "effect"
import type { ParsedCommandLine } from "../CommandLine.js"

/** The database answered but has no awa schema (or an older one): `awa migrate` has not been run on it. */
export class AwaSchemaMissing extends Data.TaggedError("AwaSchemaMissing")<{
  readonly target: string
  readonly detail: string
}> {
  override get message(): string {
    return `The database at ${this.target} has no usable awa schema (${this.detail}). Run \`awa migrate\` against it first.`
  }
}

/** Resolves the primary database URL from the flag or `DATABASE_URL`, rejecting a missing or non-postgres one. */
export const resolveDatabaseUrl = (flag: unknown, env: NodeJS.ProcessEnv = process.env): string => {
  const url = typeof flag === "string" && flag.trim() !== "" ? flag.trim() : env.DATABASE_URL?.trim()
  if (url === undefined || url === "")
    throw new MissingDatabaseUrl({ role: "primary", envVar: "DATABASE_URL" })
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidDatabaseUrl({ role: "primary", reason: "it is not a URL" })
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new InvalidDatabaseUrl({
      role: "primary",
      reason: `the scheme is "${parsed.protocol.replace(/:$/, "")}"`,
    })
  }
  return url
}

/** `host:port/database` of a URL, without credentials, for messages. */
export const describeTarget = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname || "/"}`
  } catch {
    return "<unparsable url>"
  }
}

const unreachableStates = /^(08|28|3D|57P0[1-3])/

/** Turns a runtime `DatabaseError` about the connection or a missing schema into the operator's error. */
export const explainDatabaseError = (url: string, error: unknown): unknown => {
  if (!(error instanceof DatabaseError)) return error
  const target = describeTarget(url)
  if (
    error.sqlStateClass === "connection" ||
    error.sqlStateClass === "admin-shutdown" ||
    (error.sqlState !== null && unreachableStates.test(error.sqlState))
  ) {
    return new DatabaseUnreachable({ role: "primary", target, reason: error.detail })
  }
  if (error.sqlStateClass === "undefined-object" && /awa/.test(error.detail)) {
    return new AwaSchemaMissing({ target, detail: error.detail })
  }
  return error
}

/** Options of `withPool`. */
export interface PoolOptions {
  /** Most connections (default 2). */
  readonly max?: number
  /** `application_name` (default "awa-cli"). */
  readonly applicationName?: string
}

/**
 * Runs `use` with a pool on `url` and closes the pool afterwards; database errors about the connection or
 * a missing schema come out as `DatabaseUnreachable` / `AwaSchemaMissing`.
 */
export const withPool = async <A>(
  url: string,
  use: (pool: PgPool) => Promise<A>,
  options: PoolOptions = {},
): Promise<A> => {
  const pool = createPool(url, {
    max: options.max ?? 2,
    applicationName: options.applicationName ?? "awa-cli",
  })
  // An idle client's error (server restart) must not crash the CLI; the next query reports it.
  pool.on("error", () => undefined)
  try {
    return await use(pool)
  } catch (error) {
    throw explainDatabaseError(url, error)
  } finally {
    await pool.end().catch(() => undefined)
  }
}

/** Runs `use` on a pool for the database named by `--database-url` or else `DATABASE_URL`. */
export const withDatabase = <A>(
  flags: ParsedCommandLine["flags"],
  use: (pool: PgPool) => Promise<A>,
): Promise<A> => withPool(resolveDatabaseUrl(flags["database-url"]), use)
