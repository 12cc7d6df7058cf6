import {
  classifySqlState,
  type DatabaseRole,
  DatabaseUnreachable,
  explainConnectionFailure,
  InvalidDatabaseUrl,
  type SqlStateClass,
} from "@awa/model"
import { Data, Effect, Redacted, type Scope } from "effect"
import pg from "pg"

/** A query that Postgres (or the network) rejected, with its SQLSTATE and classification. */
export class QueryFailed extends Data.TaggedError("QueryFailed")<{
  readonly role: DatabaseRole
  readonly reason: string
  readonly sqlState: string | undefined
  readonly sqlStateClass: SqlStateClass
}> {
  override get message(): string {
    return `Query on the ${this.role} database failed: ${this.reason}${this.sqlState ? ` [SQLSTATE ${this.sqlState}]` : ""}`
  }
}

/** One checked-out connection: statements on it run in order and share its transaction. */
export interface Connection {
  /** Runs `sql` with `params` (extended protocol), or as a multi-statement script when `params` is omitted. */
  readonly query: <Row = Record<string, unknown>>(
    sql: string,
    params?: ReadonlyArray<unknown>,
  ) => Effect.Effect<ReadonlyArray<Row>, QueryFailed>
}

/** A connection pool for one database role; the migrator's only door to Postgres. */
export interface Database {
  /** The role this database plays in the topology. */
  readonly role: DatabaseRole
  /** The connection string, redacted when printed. */
  readonly url: Redacted.Redacted<string>
  /** A printable description of the target (`host:port/database`, no credentials). */
  readonly target: string
  /** Runs `use` on one connection from the pool and returns it to the pool afterwards. */
  readonly withConnection: <A, E, R>(
    use: (connection: Connection) => Effect.Effect<A, E, R>,
  ) => Effect.Effect<A, E | DatabaseUnreachable, R>
  /** Runs one statement on any pooled connection. */
  readonly query: <Row = Record<string, unknown>>(
    sql: string,
    params?: ReadonlyArray<unknown>,
  ) => Effect.Effect<ReadonlyArray<Row>, QueryFailed | DatabaseUnreachable>
}

/** Describes a connection string without its credentials (`host:port/database`). */
export const describeTarget = (url: string): string => {
  try {
    const u = new URL(url)
    const host = u.hostname || u.searchParams.get("host") || "localhost"
    return `${host}:${u.port || "5432"}${u.pathname || "/"}`
  } catch {
    return "<unparsable url>"
  }
}

/** Validates that `url` is a postgres:// or postgresql:// connection string. */
export const parseDatabaseUrl = (
  role: DatabaseRole,
  url: string,
): Effect.Effect<string, InvalidDatabaseUrl> =>
  Effect.suspend(() => {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return Effect.fail(new InvalidDatabaseUrl({ role, reason: "it is not a URL" }))
    }
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      return Effect.fail(
        new InvalidDatabaseUrl({ role, reason: `the scheme is "${parsed.protocol.replace(/:$/, "")}"` }),
      )
    }
    return Effect.succeed(url)
  })

const toQueryFailed = (role: DatabaseRole, error: unknown): QueryFailed => {
  const e = error as { code?: string; message?: string }
  const sqlState = typeof e?.code === "string" ? e.code : undefined
  return new QueryFailed({
    role,
    reason: explainConnectionFailure(
      sqlState,
      typeof e?.message === "string" && e.message.length > 0 ? e.message : String(error),
    ),
    sqlState,
    sqlStateClass: classifySqlState(sqlState),
  })
}

const runQuery = <Row>(
  role: DatabaseRole,
  client: pg.Pool | pg.PoolClient,
  sql: string,
  params: ReadonlyArray<unknown> | undefined,
): Effect.Effect<ReadonlyArray<Row>, QueryFailed> =>
  Effect.tryPromise({
    try: async () => {
      const result = params === undefined ? await client.query(sql) : await client.query(sql, [...params])
      // A multi-statement script returns one result per statement; the last one is the useful one.
      const last = Array.isArray(result) ? result[result.length - 1] : result
      return (last?.rows ?? []) as ReadonlyArray<Row>
    },
    catch: (error) => toQueryFailed(role, error),
  })

/**
 * Opens a pool for `role` at `url` within the current scope, checks that the server answers, and
 * closes the pool when the scope closes.
 */
export const openDatabase = (
  role: DatabaseRole,
  url: string,
  options: { readonly maxConnections?: number } = {},
): Effect.Effect<Database, DatabaseUnreachable | InvalidDatabaseUrl, Scope.Scope> =>
  Effect.gen(function* () {
    yield* parseDatabaseUrl(role, url)
    const target = describeTarget(url)
    const pool = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new pg.Pool({
            connectionString: url,
            max: options.maxConnections ?? 4,
            connectionTimeoutMillis: 10_000,
            idleTimeoutMillis: 5_000,
            application_name: "awa-migrator",
          }),
      ),
      (p) => Effect.promise(() => p.end().catch(() => undefined)),
    )
    // Idle clients can error when the server goes away; without a listener that would crash the process.
    pool.on("error", () => undefined)
    const unreachable = (error: unknown) =>
      new DatabaseUnreachable({ role, target, reason: toQueryFailed(role, error).reason })
    const noteLost = (): void => undefined
    const withConnection: Database["withConnection"] = (use) =>
      Effect.acquireUseRelease(
        Effect.tryPromise({ try: () => pool.connect(), catch: unreachable }),
        (client) => {
          // A connection that dies while checked out (server restart, pg_terminate_backend) reports through
          // 'error'; without a listener that would end the process. The running query fails on its own.
          client.on("error", noteLost)
          return use({ query: (sql, params) => runQuery(role, client, sql, params) })
        },
        (client) =>
          Effect.sync(() => {
            client.release()
            client.off("error", noteLost)
          }),
      )
    const query: Database["query"] = (sql, params) =>
      withConnection((connection) => connection.query(sql, params))
    // Fail fast with a clear error when the server is not there, before any planning.
    yield* query("SELECT 1").pipe(
      Effect.mapError((e) =>
        e._tag === "QueryFailed" ? new DatabaseUnreachable({ role, target, reason: e.reason }) : e,
      ),
    )
    return { role, url: Redacted.make(url), target, withConnection, query }
  })
