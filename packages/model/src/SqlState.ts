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
  | "authentication"
  | "tls"
  | "prepared-statement"
  | "other"

/** Classifies a SQLSTATE code (or a Node network error code such as ECONNREFUSED) into a `SqlStateClass`. */
export const classifySqlState = (code: string | undefined): SqlStateClass => {
  if (code === undefined) return "other"
  if (code === "EPROTO" || code.startsWith("ERR_TLS") || code.startsWith("ERR_SSL")) return "tls"
  if (code.startsWith("08") || /^E[A-Z]+$/.test(code)) return "connection"
  if (code.startsWith("28")) return "authentication"
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

// node-postgres reports some failures without a SQLSTATE: a connection closed under a query, a missing
// password (its SASL client refuses to start), TLS refusals. Their messages are stable enough to classify.
const closedPattern =
  /Connection terminated|connection (?:closed|ended)|Client has encountered a connection error|not queryable|Client was closed|ECONNRESET/i
const authenticationPattern =
  /SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string|client password must be a string|password authentication failed|no password supplied/i
const tlsPattern =
  /The server does not support SSL connections|self[- ]signed certificate|unable to (?:verify|get local issuer)|certificate|SSL|TLS|EPROTO/

/**
 * Classifies a driver error from its SQLSTATE (or Node error code) and, when that says nothing, from its
 * message: connection closed under a query, a missing or wrong password, a TLS failure.
 */
export const classifyDriverError = (code: string | undefined, message: string): SqlStateClass => {
  const cls = classifySqlState(code)
  if (cls !== "other" && cls !== "connection") return cls
  if (authenticationPattern.test(message)) return "authentication"
  if (tlsPattern.test(message) && !closedPattern.test(message)) return "tls"
  if (cls === "connection" || closedPattern.test(message)) return "connection"
  return cls
}

/**
 * The reason to show for a connection that could not be opened: the driver's message, explained when it is
 * one of the cryptic ones (a URL without a password meets a server that asks for one; a TLS mismatch).
 */
export const explainConnectionFailure = (code: string | undefined, message: string): string => {
  const cls = classifyDriverError(code, message)
  if (
    cls === "authentication" &&
    /client password must be a string|no password supplied|empty password returned by client/i.test(message)
  )
    return `the server asks for a password and the URL gives none: add it (postgres://user:PASSWORD@host/db) or set PGPASSWORD or ~/.pgpass (driver: ${message})`
  if (cls === "authentication")
    return `the server refused the credentials: check the user name and password in the URL, PGPASSWORD or ~/.pgpass (server: ${message})`
  if (cls === "tls" && /does not support SSL/i.test(message))
    return `the URL asks for TLS but the server does not offer it: use sslmode=disable (or drop sslmode) for this server, or enable ssl on it (driver: ${message})`
  if (cls === "tls")
    return `the TLS handshake failed: check sslmode (require encrypts without verifying; verify-full also needs the server's CA in sslrootcert) and the server's certificate (driver: ${message})`
  return message
}
