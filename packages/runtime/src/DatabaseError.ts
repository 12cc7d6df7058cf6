import { runtimeGrants } from "@awa/model/SchemaErrors"
import { classifyDriverError, isTransientSqlState, type SqlStateClass } from "@awa/model/SqlState"
import { Schema } from "effect"

/**
 * A database operation of the runtime that failed: names the operation, the SQLSTATE and its class, and
 * whether retrying on a fresh connection may help.
 */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  operation: Schema.String,
  sqlState: Schema.NullOr(Schema.String),
  sqlStateClass: Schema.String,
  detail: Schema.String,
  transient: Schema.Boolean,
}) {
  override get message(): string {
    const code = this.sqlState === null ? "" : ` (SQLSTATE ${this.sqlState})`
    const next =
      this.sqlState === "3D000"
        ? "Check the database name in the connection URL (create the database, then run `awa migrate`)."
        : nextStep(this.sqlStateClass, this.transient)
    return `awa ${this.operation} failed${code}: ${this.detail}. ${next}`
  }
}

// What to do next for a failure of this class; the one place that turns SQLSTATE classes into advice.
const nextStep = (cls: string, transient: boolean): string => {
  if (cls === "connection" || cls === "admin-shutdown")
    return "The connection was lost: a read can be retried; a write sent outside a transaction may have committed before the loss, so check for it before retrying (workers do this by themselves)."
  if (transient) return "The transaction conflicted with another; retry it (workers retry by themselves)."
  if (cls === "prepared-statement")
    return 'A named prepared statement was missing or already there on this server connection, which happens behind a transaction-pooling PgBouncer: set pooler: "transaction" (awa CLI: --pooler transaction or AWA_POOLER=transaction).'
  if (cls === "undefined-object")
    return "The awa schema looks missing or outdated: run `awa migrate` against this database."
  if (cls === "insufficient-privilege")
    return `The database role lacks a privilege awa needs. A role running producers and workers needs: ${runtimeGrants.join("; ")} (see docs/permissions.md).`
  if (cls === "authentication")
    return "The server did not accept the credentials: give the role's password in the URL (postgres://user:PASSWORD@host/db), PGPASSWORD or ~/.pgpass (a URL without a password cannot log in to a server that asks for one), and check the user name."
  if (cls === "tls")
    return "The TLS handshake failed: match the URL's sslmode to the server (sslmode=disable for a server without TLS; sslmode=require, or verify-full with sslrootcert, for one that demands it)."
  return "Check the database logs and the operation's input."
}

/**
 * A transaction whose connection was lost (the server closed it, or it was terminated). `commitOutcome`
 * says what became of the transaction: `"rolled-back"` when the connection was lost before COMMIT was
 * sent (Postgres rolls back an unfinished transaction, so nothing it wrote is visible and retrying is
 * safe), `"unknown"` when it was lost while COMMIT (or an autocommitted write) was in flight: the writes
 * may or may not have committed, so check for them before retrying (or make the work idempotent).
 */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {
  operation: Schema.String,
  commitOutcome: Schema.Literals(["rolled-back", "unknown"]),
  sqlState: Schema.NullOr(Schema.String),
  detail: Schema.String,
}) {
  /** Always true: the same work may succeed on a fresh connection (after checking, when the outcome is unknown). */
  get transient(): boolean {
    return true
  }

  override get message(): string {
    const code = this.sqlState === null ? "" : ` (SQLSTATE ${this.sqlState})`
    return this.commitOutcome === "unknown"
      ? `awa ${this.operation}: the connection was lost while the commit was in flight${code}: ${this.detail}. The writes may or may not have committed: check whether they are in the database before retrying, or a retry may apply them twice.`
      : `awa ${this.operation}: the connection was lost before the commit${code}: ${this.detail}. Postgres rolled the transaction back, so nothing it wrote was kept; it is safe to retry on a new connection.`
  }
}

const sqlStateOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

// The text of anything thrown, without trusting it (a getter may throw).
const detailOf = (cause: unknown): string => {
  try {
    return cause instanceof Error ? String(cause.message) : String(cause)
  } catch {
    return "an error whose message could not be read"
  }
}

/** The SQLSTATE class of anything a `pg` call threw, including driver errors that carry no SQLSTATE. */
export const classifyThrown = (cause: unknown): SqlStateClass => {
  if (cause instanceof DatabaseError) return cause.sqlStateClass as SqlStateClass
  if (cause instanceof ConnectionLost) return "connection"
  return classifyDriverError(sqlStateOf(cause), detailOf(cause))
}

/** True when `cause` says the connection is gone (lost, terminated, server shutting down). */
export const isConnectionLoss = (cause: unknown): boolean => {
  const cls = classifyThrown(cause)
  return cls === "connection" || cls === "admin-shutdown"
}

/** Wraps anything a `pg` call threw as a `DatabaseError` for `operation` (an existing one is returned as is). */
export const toDatabaseError = (operation: string, cause: unknown): DatabaseError => {
  if (cause instanceof DatabaseError) return cause
  const cls = classifyThrown(cause)
  return new DatabaseError({
    operation,
    sqlState: sqlStateOf(cause) ?? null,
    sqlStateClass: cls,
    detail: detailOf(cause),
    transient: isTransientSqlState(cls),
  })
}

/** A `ConnectionLost` for `operation` from the error that reported the loss. */
export const toConnectionLost = (
  operation: string,
  commitOutcome: ConnectionLost["commitOutcome"],
  cause: unknown,
): ConnectionLost =>
  cause instanceof ConnectionLost
    ? cause.commitOutcome === commitOutcome && cause.operation === operation
      ? cause
      : new ConnectionLost({ operation, commitOutcome, sqlState: cause.sqlState, detail: cause.detail })
    : new ConnectionLost({
        operation,
        commitOutcome,
        sqlState: cause instanceof DatabaseError ? cause.sqlState : (sqlStateOf(cause) ?? null),
        detail: cause instanceof DatabaseError ? cause.detail : detailOf(cause),
      })
