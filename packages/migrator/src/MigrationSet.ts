import { createHash } from "node:crypto"
import {
  closestMatch,
  type DatabaseRole,
  InvalidIdentifier,
  InvalidMigratorOptions,
  InvalidTemplateParameter,
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
  /**
   * `-- awa:partitions PARAM TABLE...`: each named table is partitioned into one child per slot, `TABLE_0` to
   * `TABLE_{PARAM-1}`, created by the migration's own statements (a loop, so the count can be a parameter).
   * Read by {@link tablesCreatedBy}.
   */
  readonly partitions: ReadonlyArray<{ readonly param: string; readonly tables: ReadonlyArray<string> }>
}

/**
 * A template parameter of a migration set. `identifier` values (the schema name) are rendered as quoted
 * identifiers; `integer` values (ring sizes) are validated against their range and rendered as decimal
 * literals, never as identifiers; `choice` values (the pgmq provider) only select files through `awa:when`
 * and are never rendered into SQL.
 */
export type TemplateParamSpec =
  | { readonly kind: "identifier"; readonly default: string; readonly description: string }
  | {
      readonly kind: "integer"
      readonly default: number
      readonly min: number
      readonly max: number
      /** The API option and CLI flag that set it, for error messages. */
      readonly option: string
      readonly description: string
    }
  | {
      readonly kind: "choice"
      readonly default: string
      readonly choices: ReadonlyArray<string>
      readonly description: string
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
  /** Every template parameter's default value, as rendered (ledger rows record the same strings). */
  readonly defaults: Readonly<Record<string, string>>
  /** The template parameters of the set and how each is validated and rendered. */
  readonly params: Readonly<Record<string, TemplateParamSpec>>
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
  const partitions: Array<{ param: string; tables: Array<string> }> = []
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
    } else if (directive[1] === "partitions") {
      const [param, ...tables] = (directive[2] ?? "").split(/\s+/).filter(Boolean)
      if (!param || tables.length === 0)
        throw new Error(`${file}: awa:partitions needs a parameter and at least one table`)
      partitions.push({ param, tables })
    } else throw new Error(`${file}: unknown directive awa:${directive[1]}`)
  }
  return { noTransaction, when, partitions }
}

const loadSet = (
  name: MigrationSetName,
  role: DatabaseRole,
  instanceParam: string | undefined,
  fixedInstance: string,
  params: Record<string, TemplateParamSpec>,
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
    defaults: Object.fromEntries(Object.entries(params).map(([k, spec]) => [k, String(spec.default)])),
    params,
    migrations,
    latestVersion: migrations.length,
  }
}

/** The default number of queue-ring slots (partitions per queue-ring table) of a queue-storage schema. */
export const defaultQueueRingSlots = 16

/** The default number of claim-ring slots (partitions of the claim-receipt table) of a queue-storage schema. */
export const defaultClaimRingSlots = 8

/**
 * The range both ring sizes must lie in. Two is the least a ring can rotate with (the slot being written and
 * one being emptied). Every claim probes the lane index of each queue-ring slot and each claim-ring slot, and
 * each queue-ring slot is five tables, so the cost of a claim and of planning grows with the sizes: 64 (320
 * queue-ring tables) is the most awa accepts.
 */
export const ringSlotsRange = { min: 2, max: 64 } as const

const queueStorageParams: Record<string, TemplateParamSpec> = {
  schema: { kind: "identifier", default: "awa", description: "the schema the substrate is installed in" },
  queue_ring_slots: {
    kind: "integer",
    default: defaultQueueRingSlots,
    ...ringSlotsRange,
    option: "--queue-ring-slots (queueRingSlots)",
    description:
      "slots of the queue ring: partitions of ready_entries, ready_tombstones, done_entries, completion_batches and closures",
  },
  claim_ring_slots: {
    kind: "integer",
    default: defaultClaimRingSlots,
    ...ringSlotsRange,
    option: "--claim-ring-slots (claimRingSlots)",
    description: "slots of the claim ring: partitions of claim_batches",
  },
}

let loaded: ReadonlyMap<MigrationSetName, MigrationSet> | undefined

/** The bundled migration sets, parsed once on first use (nothing is built at import time). */
export const migrationSets = (): ReadonlyMap<MigrationSetName, MigrationSet> => {
  loaded ??= new Map([
    ["canonical", loadSet("canonical", "primary", undefined, "awa", {})],
    ["queue-storage", loadSet("queue-storage", "primary", "schema", "awa", queueStorageParams)],
    [
      "pgmq",
      loadSet("pgmq", "pgmq", undefined, "pgmq", {
        provider: {
          kind: "choice",
          default: "sql",
          choices: pgmqProviders,
          description: "how pgmq is provided",
        },
      }),
    ],
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

/**
 * Which sets an operation covers, and the ring sizes of the queue-storage schema `awa` when the operation
 * installs it (see `RingSizeOptions`). Every field is optional; the defaults are what `awa migrate` does.
 */
export interface SetSelection extends RingSizeOptions {
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

/** Ring sizes of a queue-storage schema, as API options (template parameters `queue_ring_slots`, `claim_ring_slots`). */
export interface RingSizeOptions {
  /**
   * Slots of the queue ring (partitions per queue-ring table) of the queue-storage schemas this call installs.
   * Default 16; 2 to 64. A schema already installed keeps its own sizes; asking for others fails with
   * `InstalledParametersDiffer`.
   */
  readonly queueRingSlots?: number | undefined
  /** Slots of the claim ring (partitions of the claim receipts), as `queueRingSlots`. Default 8; 2 to 64. */
  readonly claimRingSlots?: number | undefined
}

/**
 * Validates given ring sizes and returns them as template parameters (only those given), or the first
 * `InvalidTemplateParameter`.
 */
export const ringSizeParams = (
  options: RingSizeOptions,
): Readonly<Record<string, string>> | InvalidTemplateParameter => {
  const out: Record<string, string> = {}
  const specs = getMigrationSet("queue-storage").params
  for (const [param, value] of [
    ["queue_ring_slots", options.queueRingSlots],
    ["claim_ring_slots", options.claimRingSlots],
  ] as const) {
    if (value === undefined) continue
    const checked = validateTemplateParam("queue-storage", param, specs[param], String(value))
    // Integer parameters fail only with InvalidTemplateParameter.
    if (typeof checked !== "string") return checked as InvalidTemplateParameter
    out[param] = checked
  }
  return out
}

/** Whether any ring size is given. */
export const hasRingSizes = (options: RingSizeOptions): boolean =>
  options.queueRingSlots !== undefined || options.claimRingSlots !== undefined

/**
 * Validates one template parameter value against its spec: an integer must be a plain decimal whole number
 * inside its range (no sign, exponent or fraction), so what is rendered is exactly that literal.
 */
export const validateTemplateParam = (
  set: string,
  param: string,
  spec: TemplateParamSpec | undefined,
  value: string,
): string | InvalidTemplateParameter | InvalidIdentifier => {
  if (spec === undefined || spec.kind === "identifier") return validateIdentifier(param, value)
  if (spec.kind === "choice") {
    if (spec.choices.includes(value)) return value
    return new InvalidTemplateParameter({
      set,
      param,
      option: param,
      value,
      min: 0,
      max: 0,
      reason: `use one of ${spec.choices.join(", ")}`,
    })
  }
  const invalid = (reason: string) =>
    new InvalidTemplateParameter({
      set,
      param,
      option: spec.option,
      value,
      min: spec.min,
      max: spec.max,
      reason,
    })
  if (!/^[0-9]{1,9}$/.test(value)) return invalid("it is not a whole number")
  const n = Number(value)
  if (n < spec.min || n > spec.max) return invalid(`it is outside ${spec.min}..${spec.max}`)
  return String(n)
}

/**
 * Substitutes template parameters into a migration's SQL. This is the one function that fills placeholders:
 * `{{schema}}` (and any identifier parameter) always with a quoted identifier, an integer parameter such as
 * `{{queue_ring_slots}}` with its validated decimal literal. A value that fails validation throws: callers
 * validate options first and report the typed error.
 */
export const renderTemplate = (
  source: string,
  params: Readonly<Record<string, string>>,
  specs: Readonly<Record<string, TemplateParamSpec>> = {},
): string =>
  source.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (_, key: string) => {
    const value = params[key]
    if (value === undefined) throw new Error(`template parameter {{${key}}} has no value`)
    const spec = specs[key]
    if (spec?.kind === "choice")
      throw new Error(`template parameter {{${key}}} only selects files; it is not rendered`)
    if (spec?.kind === "integer") {
      const checked = validateTemplateParam("template", key, spec, value)
      if (typeof checked !== "string") throw checked
      return checked
    }
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
  const sql = applies ? renderTemplate(migration.source, merged, set.params) : ""
  return { migration, instance, params: merged, sql, checksum: checksumOf(sql) }
}

/** Renders every migration of a set instance, in version order. */
export const renderSet = (
  set: MigrationSet,
  params: Readonly<Record<string, string>>,
): ReadonlyArray<RenderedMigration> => set.migrations.map((m) => renderMigration(set, m, params))

// Names of the relations of one kind (`TABLE` or `VIEW`) a set's SQL creates in `awa` or `{{schema}}`; for
// tables, also the ring partitions its `awa:partitions` directives declare for the given template parameters.
const relationsCreatedBy = (
  setName: MigrationSetName,
  kind: "TABLE" | "VIEW",
  params: Readonly<Record<string, string>>,
): ReadonlyArray<string> => {
  const set = getMigrationSet(setName)
  const merged = { ...set.defaults, ...params }
  const names = new Set<string>()
  const pattern = new RegExp(
    `CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:UNLOGGED\\s+)?${kind}\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?(?:awa|\\{\\{schema\\}\\})\\.("?)([a-z_0-9]+)\\1`,
    "gi",
  )
  for (const m of set.migrations) {
    for (const match of m.source.matchAll(pattern)) {
      if (match[2]) names.add(match[2])
    }
    if (kind !== "TABLE") continue
    for (const { param, tables } of m.directives.partitions) {
      const slots = Number(merged[param])
      for (const table of tables) for (let slot = 0; slot < slots; slot++) names.add(`${table}_${slot}`)
    }
  }
  return [...names]
}

/**
 * Names of the tables a set creates in its schema (`awa`, or the `{{schema}}` it is rendered for), read
 * from its SQL: every `CREATE TABLE`, plus the ring partitions its `awa:partitions` directives declare, for
 * the given template parameters (default: the set's defaults, e.g. 16 queue-ring and 8 claim-ring slots).
 */
export const tablesCreatedBy = (
  setName: MigrationSetName,
  params: Readonly<Record<string, string>> = {},
): ReadonlyArray<string> => relationsCreatedBy(setName, "TABLE", params)

/**
 * Names of the views a set creates in its schema (`awa`, or the `{{schema}}` it is rendered for), read
 * from its SQL (for example `jobs_all` of the queue-storage set).
 */
export const viewsCreatedBy = (setName: MigrationSetName): ReadonlyArray<string> =>
  relationsCreatedBy(setName, "VIEW", {})

/** Table names created in schema `awa` by the canonical set, read from its SQL. */
export const canonicalTableNames = (): ReadonlyArray<string> => tablesCreatedBy("canonical")
