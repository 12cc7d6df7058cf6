/**
 * The one module of `@awa/testing` that talks to `pg` directly: short-lived administrative sessions
 * (create, clone and drop databases, advisory locks, probes) against a server's admin URL.
 */
import pg from "pg"

/** A row as returned by an administrative query. */
export type AdminRow = Readonly<Record<string, unknown>>

/** An open administrative session on one database. */
export interface AdminSession {
  /** Runs one statement with bound parameters and returns its rows. */
  readonly query: (text: string, params?: ReadonlyArray<unknown>) => Promise<ReadonlyArray<AdminRow>>
  /** The server's `server_version_num`, e.g. 170010. */
  readonly serverVersionNum: number
  /** The server's `server_version`, e.g. "17.10". */
  readonly serverVersion: string
}

/**
 * Opens a session on `url`, runs `use` with it and always closes it, so callers never leak a connection.
 */
export const withAdminSession = async <A>(
  url: string,
  use: (session: AdminSession) => Promise<A>,
): Promise<A> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  // A server that goes away while the session is idle emits "error" on the client; without a listener
  // that would crash the process instead of failing the pending query.
  client.on("error", () => {})
  await client.connect()
  try {
    const version = await client.query<{ num: string; version: string }>(
      "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
    )
    const row = version.rows[0]
    const session: AdminSession = {
      query: async (text, params) => (await client.query(text, params ? [...params] : undefined)).rows,
      serverVersionNum: Number(row?.num ?? 0),
      serverVersion: String(row?.version ?? "unknown"),
    }
    return await use(session)
  } finally {
    await client.end().catch(() => {})
  }
}

/** Returns the SQLSTATE of a Postgres error, or `undefined` for anything else. */
export const sqlStateOf = (error: unknown): string | undefined => {
  if (error instanceof pg.DatabaseError) return error.code
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { readonly code: unknown }).code
    return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
  }
  return undefined
}

/** SQLSTATE 55006 (object_in_use): e.g. "source database is being accessed by other users". */
export const objectInUse = "55006"

/** SQLSTATE 42P04 (duplicate_database). */
export const duplicateDatabase = "42P04"

/** Quotes an SQL identifier (doubling embedded double quotes), as `pg.escapeIdentifier` does. */
export const quoteIdentifier = (name: string): string => pg.escapeIdentifier(name)
