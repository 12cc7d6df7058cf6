import { InvalidIdentifier } from "./MigratorError.js"

/** The longest identifier Postgres keeps without truncation (NAMEDATALEN - 1 bytes). */
export const maxIdentifierLength = 63

const identifierPattern = /^[a-z_][a-z0-9_]*$/

/**
 * Checks that `value` is a plain lower-case Postgres identifier awa can use unquoted and quoted
 * alike, and returns it; otherwise returns an `InvalidIdentifier` error naming the problem.
 * `kind` names what the identifier is for in the message (for example "schema name").
 */
export const validateIdentifier = (kind: string, value: string): string | InvalidIdentifier => {
  if (value.length === 0) return new InvalidIdentifier({ kind, value, reason: "it is empty" })
  if (Buffer.byteLength(value, "utf8") > maxIdentifierLength) {
    return new InvalidIdentifier({
      kind,
      value,
      reason: `it is ${Buffer.byteLength(value, "utf8")} bytes long and Postgres keeps at most ${maxIdentifierLength}`,
    })
  }
  if (/[A-Z]/.test(value) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
    return new InvalidIdentifier({ kind, value, reason: "it has upper-case letters" })
  }
  if (/^[0-9]/.test(value)) {
    return new InvalidIdentifier({ kind, value, reason: "it starts with a digit" })
  }
  if (!identifierPattern.test(value)) {
    return new InvalidIdentifier({ kind, value, reason: "it has characters other than a-z, 0-9 and _" })
  }
  if (value.startsWith("pg_")) {
    return new InvalidIdentifier({
      kind,
      value,
      reason: 'names starting with "pg_" are reserved by Postgres',
    })
  }
  return value
}

/** Quotes an identifier for SQL text, doubling embedded quotes (as Postgres's quote_ident does). */
export const quoteIdentifier = (value: string): string => `"${value.replaceAll('"', '""')}"`
