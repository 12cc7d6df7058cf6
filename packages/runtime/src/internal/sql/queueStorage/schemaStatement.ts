// Named statements of one queue-storage schema: the same SQL for every schema, with the schema's quoted name
// filled in once when the engine is made, and a statement name that carries the schema (a prepared statement
// of one schema never answers for another on a shared connection).
import { type SqlStatement, statement } from "../../../PgExecutor.js"

/** Builds the statements of one schema: `s` is the quoted schema name to write in SQL. */
export interface SchemaSql {
  /** The quoted schema name, e.g. `"awa"`. */
  readonly s: string
  /** Defines a statement named after the schema. */
  readonly statement: (name: string, text: string, options?: { readonly prepared?: boolean }) => SqlStatement
}

/** The statement builder for `schema` (a validated lower-case identifier). */
export const schemaSql = (schema: string): SchemaSql => ({
  s: `"${schema}"`,
  statement: (name, text, options) => statement(`qs_${schema}_${name}`, text, options),
})
