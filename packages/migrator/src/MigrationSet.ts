import { createHash } from "node:crypto"
import {
  closestMatch,
  type DatabaseRole,
  InvalidIdentifier,
  InvalidMigratorOptions,
  quoteIdentifier,
  UnknownMigrationSet,
  validateIdentifier,
} from "@awa/model"
import { bundledSets } from "./internal/bundledMigrations.generated.js"

/** The name of a bundled migration set. */
export type MigrationSetName = "canonical" | "queue-storage" | "pgmq"

/** Every migration set, in the order `awa migrate` applies them. */
export const migrationSetNames: ReadonlyArray<MigrationSetName> = ["canonical", "queue-storage", "pgmq"]

/** How a pgmq install is provided: an existing `pgmq` schema, the server's extension, or awa's SQL API. */
export type PgmqProvider = "existing" | "extension" | "sql"

/** The pgmq providers, for validation and help text. */
export const pgmqProviders: ReadonlyArray<PgmqProvider> = ["existing", "extension", "sql"]

/** Header directives read from a migration's leading `--` comment lines. */
export interface MigrationDirectives {
  /** `-- awa:no-transaction`: the migration runs outside a transaction (for example CREATE INDEX CONCURRENTLY). */
  readonly noTransaction: boolean
  /** `-- awa:when param=value`: the migration renders only when every named template parameter matches. */
  readonly when: Readonly<Record<string, string>>
}

/** One forward-only migration file of a set. */
export interface Migration {
  readonly set: MigrationSetName
  readonly version: number
  readonly name: string
  readonly file: string
  readonly source: string
  readonly sourceChecksum: string
  readonly directives: MigrationDirectives
}

/** A migration set: its files, the role it targets, and how its template parameters are resolved. */
export interface MigrationSet {
  readonly name: MigrationSetName
  readonly role: DatabaseRole
  /** The template parameter whose value names an instance of the set (`schema` for queue-storage). */
  readonly instanceParam: string | undefined
  /** The instance of a set without an instance parameter. */
  readonly fixedInstance: string
  readonly defaults: Readonly<Record<string, string>>
  readonly migrations: ReadonlyArray<Migration>
  /** The newest version the code knows. */
  readonly latestVersion: number
}

/** A migration with its template parameters substituted: exactly the SQL that runs and is checksummed. */
export interface RenderedMigration {
  readonly migration: Migration
  readonly instance: string
  readonly params: Readonly<Record<string, string>>
  /** Empty when a `when` directive does not match: the version is still ledgered. */
  readonly sql: string
  readonly checksum: string
}

const fileNamePattern = /^(\d{4})_([a-z0-9_]+)\.sql$/

const parseDirectives = (file: string, source: string): MigrationDirectives => {
  let noTransaction = false
  const when: Record<string, string> = {}
  for (const line of source.split("\n")) {
    const trimmed = line.trim()
    if (trimmed === "") continue
    if (!trimmed.startsWith("--")) break
    const directive = /^--\s*awa:([a-z-]+)(?:\s+(.*))?$/.exec(trimmed)
    if (!directive) continue
    if (directive[1] === "no-transaction") noTransaction = true
    else if (directive[1] === "when") {
      for (const clause of (directive[2] ?? "").split(/\s+/).filter(Boolean)) {
        const [key, value] = clause.split("=")
        if (!key || value === undefined) throw new Error(`${file}: malformed awa:when clause "${clause}"`)
        when[key] = value
      }
    } else throw new Error(`${file}: unknown directive awa:${directive[1]}`)
  }
  return { noTransaction, when }
}

const loadSet = (
  name: MigrationSetName,
  role: DatabaseRole,
  instanceParam: string | undefined,
  fixedInstance: string,
  defaults: Record<string, string>,
): MigrationSet => {
  const files = bundledSets[name] ?? []
  const migrations = files.map(({ file, sql, sourceChecksum }, index): Migration => {
    const match = fileNamePattern.exec(file)
    if (!match) throw new Error(`migrations/${name}/${file}: file names must look like NNNN_slug.sql`)
    const version = Number(match[1])
    if (version !== index + 1) throw new Error(`migrations/${name}/${file}: expected version ${index + 1}`)
    return {
      set: name,
      version,
      name: match[2] ?? file,
      file,
      source: sql,
      sourceChecksum,
      directives: parseDirectives(file, sql),
    }
  })
  return {
    name,
    role,
    instanceParam,
    fixedInstance,
    defaults,
    migrations,
    latestVersion: migrations.length,
  }
}

let loaded: ReadonlyMap<MigrationSetName, MigrationSet> | undefined

/** The bundled migration sets, parsed once on first use (nothing is built at import time). */
export const migrationSets = (): ReadonlyMap<MigrationSetName, MigrationSet> => {
  loaded ??= new Map([
    ["canonical", loadSet("canonical", "primary", undefined, "awa", {})],
    ["queue-storage", loadSet("queue-storage", "primary", "schema", "awa", { schema: "awa" })],
    ["pgmq", loadSet("pgmq", "pgmq", undefined, "pgmq", { provider: "sql" })],
  ])
  return loaded
}

/** Looks up a set by name. */
export const getMigrationSet = (name: MigrationSetName): MigrationSet => {
  const set = migrationSets().get(name)
  if (!set) throw new Error(`unknown migration set ${name}`)
  return set
}

/** Resolves user-given set names, failing with a "did you mean" error for unknown names. */
export const resolveSetNames = (
  names: ReadonlyArray<string>,
): ReadonlyArray<MigrationSetName> | UnknownMigrationSet => {
  const known = migrationSetNames as ReadonlyArray<string>
  for (const name of names) {
    if (!known.includes(name)) {
      return new UnknownMigrationSet({ name, known, suggestion: closestMatch(name, known) })
    }
  }
  return migrationSetNames.filter((n) => names.includes(n))
}

/** Which sets an operation covers. Every field is optional; the defaults are what `awa migrate` does. */
export interface SetSelection {
  /** Restrict to these sets (validated; unknown names fail with a suggestion). Default: canonical and queue-storage, plus pgmq with `withPgmq`. */
  readonly sets?: ReadonlyArray<string> | undefined
  /**
   * Also cover the optional pgmq set (role `pgmq`), installing it if needed. Default false; a database
   * where pgmq is already installed is covered either way (by `migrate`, `status` and `plan`).
   */
  readonly withPgmq?: boolean | undefined
  /** Force how pgmq is provided instead of detecting it (when rendering without a database: default `sql`). */
  readonly pgmqProvider?: PgmqProvider | undefined
}

/** The sets a selection covers, in apply order, or a "did you mean" error for an unknown name. */
export const selectSets = (
  selection: SetSelection,
): ReadonlyArray<MigrationSetName> | UnknownMigrationSet => {
  if (selection.sets !== undefined && selection.sets.length > 0) return resolveSetNames(selection.sets)
  return migrationSetNames.filter((n) => n !== "pgmq" || selection.withPgmq === true)
}

/** Validates a pgmq provider override. */
export const parsePgmqProvider = (value: string): PgmqProvider | InvalidMigratorOptions =>
  (pgmqProviders as ReadonlyArray<string>).includes(value)
    ? (value as PgmqProvider)
    : new InvalidMigratorOptions({
        reason: `Unknown pgmq provider "${value}"${closestMatch(value, pgmqProviders) ? ` (did you mean "${closestMatch(value, pgmqProviders)}"?)` : ""}. Use one of: ${pgmqProviders.join(", ")}.`,
      })

/** Names that a queue-storage schema may not take: Postgres's own schemas and awa's other schemas. */
const reservedSchemaNames = new Set(["public", "information_schema", "awa_migrator", "pgmq", "awa_pgmq"])

/** Validates a queue-storage schema name (a lower-case identifier that is not reserved). */
export const validateSchemaName = (schema: string): string | InvalidIdentifier => {
  const checked = validateIdentifier("schema name", schema)
  if (typeof checked !== "string") return checked
  if (reservedSchemaNames.has(schema)) {
    return new InvalidIdentifier({ kind: "schema name", value: schema, reason: "that schema is reserved" })
  }
  return checked
}

/**
 * Substitutes template parameters into a migration's SQL. This is the one function that fills the
 * `{{schema}}` placeholder, always with a quoted identifier.
 */
export const renderTemplate = (source: string, params: Readonly<Record<string, string>>): string =>
  source.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (_, key: string) => {
    const value = params[key]
    if (value === undefined) throw new Error(`template parameter {{${key}}} has no value`)
    return quoteIdentifier(value)
  })

/** The checksum the ledger stores: SHA-256 of the rendered SQL. */
export const checksumOf = (sql: string): string => createHash("sha256").update(sql).digest("hex")

/** Renders one migration for a set instance with the given parameters. */
export const renderMigration = (
  set: MigrationSet,
  migration: Migration,
  params: Readonly<Record<string, string>>,
): RenderedMigration => {
  const merged = { ...set.defaults, ...params }
  const instance = set.instanceParam ? (merged[set.instanceParam] ?? set.fixedInstance) : set.fixedInstance
  const applies = Object.entries(migration.directives.when).every(([k, v]) => merged[k] === v)
  const sql = applies ? renderTemplate(migration.source, merged) : ""
  return { migration, instance, params: merged, sql, checksum: checksumOf(sql) }
}

/** Renders every migration of a set instance, in version order. */
export const renderSet = (
  set: MigrationSet,
  params: Readonly<Record<string, string>>,
): ReadonlyArray<RenderedMigration> => set.migrations.map((m) => renderMigration(set, m, params))

// Names of the relations of one kind (`TABLE` or `VIEW`) a set's SQL creates in `awa` or `{{schema}}`.
const relationsCreatedBy = (setName: MigrationSetName, kind: "TABLE" | "VIEW"): ReadonlyArray<string> => {
  const names = new Set<string>()
  const pattern = new RegExp(
    `CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:UNLOGGED\\s+)?${kind}\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?(?:awa|\\{\\{schema\\}\\})\\.("?)([a-z_0-9]+)\\1`,
    "gi",
  )
  for (const m of getMigrationSet(setName).migrations) {
    for (const match of m.source.matchAll(pattern)) {
      if (match[2]) names.add(match[2])
    }
  }
  return [...names]
}

/**
 * Names of the tables a set creates in its schema (`awa`, or the `{{schema}}` it is rendered for), read
 * from its SQL.
 */
export const tablesCreatedBy = (setName: MigrationSetName): ReadonlyArray<string> =>
  relationsCreatedBy(setName, "TABLE")

/**
 * Names of the views a set creates in its schema (`awa`, or the `{{schema}}` it is rendered for), read
 * from its SQL (for example `jobs_all` of the queue-storage set).
 */
export const viewsCreatedBy = (setName: MigrationSetName): ReadonlyArray<string> =>
  relationsCreatedBy(setName, "VIEW")

/** Table names created in schema `awa` by the canonical set, read from its SQL. */
export const canonicalTableNames = (): ReadonlyArray<string> => tablesCreatedBy("canonical")
