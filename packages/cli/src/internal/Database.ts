// How CLI commands reach the primary database: the URL from --database-url or DATABASE_URL, a small pool
// from the runtime, and database failures turned into the errors (and exit codes) an operator can act on.
import {
  type DatabaseRole,
  DatabaseUnreachable,
  InvalidDatabaseUrl,
  MissingDatabaseUrl,
} from "@awa/model/MigratorError"
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

/** The largest TCP port number. */
const maxPort = 65_535

/**
 * Why `url` cannot be a connection string, or undefined when it can: not a URL, a port that is not a number
 * from 1 to 65535 (named, since `new URL` only says "invalid URL"), or a scheme other than postgres.
 */
const urlProblem = (url: string): string | undefined => {
  // The authority's port, read before `new URL` rejects it, so the message can name it.
  const port = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#@]*):([^/?#]*)/i.exec(url)?.[1]
  if (
    port !== undefined &&
    port !== "" &&
    !(/^[0-9]+$/.test(port) && Number(port) >= 1 && Number(port) <= maxPort)
  ) {
    return `its port "${port}" is not a number from 1 to ${maxPort}`
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return "it is not a URL"
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return `the scheme is "${parsed.protocol.replace(/:$/, "")}"`
  }
  return undefined
}

/**
 * Checks a connection string before anything connects, throwing `InvalidDatabaseUrl` that names the problem
 * and where the URL came from (`source`: the flag or the environment variable), since a bad URL in the
 * environment is easy to miss.
 */
export const checkDatabaseUrl = (role: DatabaseRole, url: string, source: string): string => {
  const problem = urlProblem(url)
  if (problem !== undefined) {
    throw new InvalidDatabaseUrl({
      role,
      reason: source.startsWith("--") ? problem : `${problem} (the URL came from ${source})`,
    })
  }
  return url
}

/** A URL from its flag, else from its environment variable, with where it came from; undefined when neither is set. */
export const databaseUrlFrom = (
  flag: { readonly name: string; readonly value: unknown },
  envVar: string,
  env: NodeJS.ProcessEnv = process.env,
): { readonly url: string; readonly source: string } | undefined => {
  if (typeof flag.value === "string" && flag.value.trim() !== "") {
    return { url: flag.value.trim(), source: `--${flag.name}` }
  }
  const fromEnv = env[envVar]?.trim()
  return fromEnv === undefined || fromEnv === "" ? undefined : { url: fromEnv, source: envVar }
}

/** Resolves the primary database URL from the flag or `DATABASE_URL`, rejecting a missing or non-postgres one. */
export const resolveDatabaseUrl = (flag: unknown, env: NodeJS.ProcessEnv = process.env): string => {
  const found = databaseUrlFrom({ name: "database-url", value: flag }, "DATABASE_URL", env)
  if (found === undefined) throw new MissingDatabaseUrl({ role: "primary", envVar: "DATABASE_URL" })
  return checkDatabaseUrl("primary", found.url, found.source)
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

/** The message of anything thrown, for the reason of an error. */
const detailOf = (error: unknown): string =>
  error instanceof DatabaseError ? error.detail : error instanceof Error ? error.message : String(error)

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
  /** The role the URL plays, named when it cannot be reached (default "primary"). */
  readonly role?: DatabaseRole
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
    // Connect once before anything else: whatever fails here (refused, DNS, TLS such as sslmode=require on a
    // server without SSL, authentication, a missing database) is a connection failure, and says so.
    const client = await pool.connect().catch((error: unknown) => {
      throw new DatabaseUnreachable({
        role: options.role ?? "primary",
        target: describeTarget(url),
        reason: detailOf(error),
      })
    })
    client.release()
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
