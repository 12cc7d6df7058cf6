import { classifySqlState, isTransientSqlState, type SqlStateClass } from "@awa/model/SqlState"
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
    const next = this.transient
      ? "The connection was lost or the transaction conflicted; retry the operation (workers retry by themselves)."
      : this.sqlStateClass === "prepared-statement"
        ? 'A named prepared statement was missing or already there on this server connection, which happens behind a transaction-pooling PgBouncer: set pooler: "transaction" (awa CLI: --pooler transaction or AWA_POOLER=transaction).'
        : this.sqlStateClass === "undefined-object"
          ? "The awa schema looks missing or outdated: run `awa migrate` against this database."
          : "Check the database logs and the operation's input."
    return `awa ${this.operation} failed${code}: ${this.detail}. ${next}`
  }
}

/** Wraps anything a `pg` call threw as a `DatabaseError` for `operation` (an existing one is returned as is). */
export const toDatabaseError = (operation: string, cause: unknown): DatabaseError => {
  if (cause instanceof DatabaseError) return cause
  const code =
    typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
      ? cause.code
      : undefined
  const cls: SqlStateClass = classifySqlState(code)
  const detail = cause instanceof Error ? cause.message : String(cause)
  // pg reports a connection that closed under a query without a SQLSTATE; treat those as transient too.
  const closed =
    /Connection terminated|connection (?:closed|ended)|Client has encountered a connection error|not queryable/i.test(
      detail,
    )
  return new DatabaseError({
    operation,
    sqlState: code ?? null,
    sqlStateClass: closed && cls === "other" ? "connection" : cls,
    detail,
    transient: isTransientSqlState(cls) || closed,
  })
}
