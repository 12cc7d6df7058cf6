/**
 * What a Postgres SQLSTATE code means to awa. This is the one place codes are interpreted; every
 * package maps driver errors through `classifySqlState`.
 */
export type SqlStateClass =
  | "connection"
  | "serialization"
  | "deadlock"
  | "unique-violation"
  | "check-violation"
  | "undefined-object"
  | "duplicate-object"
  | "object-in-use"
  | "insufficient-privilege"
  | "syntax"
  | "admin-shutdown"
  | "prepared-statement"
  | "other"

/** Classifies a SQLSTATE code (or a Node network error code such as ECONNREFUSED) into a `SqlStateClass`. */
export const classifySqlState = (code: string | undefined): SqlStateClass => {
  if (code === undefined) return "other"
  if (code.startsWith("08") || /^E[A-Z]+$/.test(code)) return "connection"
  switch (code) {
    case "40001":
      return "serialization"
    case "40P01":
      return "deadlock"
    case "23505":
      return "unique-violation"
    case "23514":
      return "check-violation"
    case "42P01":
    case "42704":
    case "42883":
    case "3F000":
    case "3D000":
      return "undefined-object"
    case "42P06":
    case "42P07":
    case "42710":
    case "42723":
      return "duplicate-object"
    case "55006":
    case "55P03":
      return "object-in-use"
    case "42501":
      return "insufficient-privilege"
    case "42601":
      return "syntax"
    case "57P01":
    case "57P02":
    case "57P03":
      return "admin-shutdown"
    // duplicate_prepared_statement / invalid_sql_statement_name: awa names its prepared statements, so these
    // mean a transaction pooler moved the client to a server connection that did (not) prepare them.
    case "42P05":
    case "26000":
      return "prepared-statement"
    default:
      return "other"
  }
}

/** True when the error class means the connection is gone and the operation may be retried on a new one. */
export const isTransientSqlState = (cls: SqlStateClass): boolean =>
  cls === "connection" || cls === "admin-shutdown" || cls === "serialization" || cls === "deadlock"
