import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  type DatabaseRole,
  type InvalidIdentifier,
  InvalidMigratorOptions,
  InvalidTemplateParameter,
  type UnknownMigrationSet,
} from "@awa/model"
import { ledgerBootstrapSql } from "./internal/bundledMigrations.generated.js"
import {
  getMigrationSet,
  type MigrationSetName,
  type PgmqProvider,
  type RenderedMigration,
  renderSet,
  ringSizeParams,
  type SetSelection,
  selectSets,
  validateSchemaName,
} from "./MigrationSet.js"

/** Whether exported files hold their own transaction control. */
export type TransactionStyle = "none" | "per-file"

/** Every {@link TransactionStyle}, for validation and help text. */
export const transactionStyles: ReadonlyArray<TransactionStyle> = ["none", "per-file"]

/** How the target databases of an export are laid out. */
export type ExportLayout = "single" | "split"

/** Every {@link ExportLayout}, for validation and help text. */
export const exportLayouts: ReadonlyArray<ExportLayout> = ["single", "split"]

/**
 * What to render: the set selection, plus extra queue-storage schemas. No database is needed. Ring sizes
 * (`queueRingSlots`, `claimRingSlots`) apply to every queue-storage schema rendered, and are written into the
 * ledger rows exactly as `migrate` records them.
 */
export interface RenderSqlOptions extends SetSelection {
  /** Extra queue-storage schemas to render besides `awa`. */
  readonly queueStorageSchemas?: ReadonlyArray<string> | undefined
  /**
   * `none` (default): no BEGIN/COMMIT in the files, for tools that wrap each file in a transaction of their
   * own (dbmate, Flyway, sqitch, `psql --single-transaction`). `per-file`: each file runs in its own
   * BEGIN/COMMIT, for applying with plain `psql -f`.
   */
  readonly transactionStyle?: TransactionStyle | undefined
  /**
   * `split` (default): one target per role, the pgmq set in a `pgmq` target with its own ledger bootstrap,
   * as for a separate `PGMQ_DATABASE_URL`. `single`: one database holds every set, so one target and one
   * ledger bootstrap.
   */
  readonly layout?: ExportLayout | undefined
}

/** One file of a rendered script: a migration with its ledger row, or the ledger bootstrap. */
export interface ScriptFile {
  readonly fileName: string
  readonly sql: string
}

/** The SQL for one target database, in apply order. */
export interface TargetScript {
  readonly role: DatabaseRole
  readonly description: string
  /** The comment lines every file of this target starts with: layout, transaction style, pgmq provider. */
  readonly header: string
  readonly files: ReadonlyArray<ScriptFile>
}

const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`

const describeWhen = (when: Readonly<Record<string, string>>): string =>
  Object.entries(when)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")

const wrap = (r: RenderedMigration, style: TransactionStyle, exportHeader: string): string => {
  const m = r.migration
  const ledgerRow =
    "INSERT INTO awa_migrator.ledger (migration_set, instance, version, name, checksum, params, duration_ms)\n" +
    `  VALUES (${literal(m.set)}, ${literal(r.instance)}, ${m.version}, ${literal(m.name)}, ${literal(r.checksum)}, ${literal(JSON.stringify(r.params))}::jsonb, 0);\n`
  const header = `-- awa migration ${m.set}/${r.instance} version ${m.version} (${m.file}), checksum ${r.checksum}\n${exportHeader}`
  const body =
    r.sql.trim() === ""
      ? `-- No statements for ${describeWhen(r.params)}: this migration applies only when ${describeWhen(m.directives.when)}.\n-- The file still records its ledger row, so awa migrate counts it as applied.\n`
      : `${r.sql.trimEnd()}\n`
  if (m.directives.noTransaction) {
    return `${header}-- Runs outside any transaction: apply it without a wrapping transaction (dbmate: transaction:false).\n${body}${ledgerRow}`
  }
  const lock = `SELECT pg_advisory_xact_lock(hashtext('awa_migrator'), hashtext(${literal(m.set)} || '/' || ${literal(r.instance)}));\n`
  if (style === "per-file") return `${header}BEGIN;\n${lock}${body}${ledgerRow}COMMIT;\n`
  return `${header}-- Waits for a concurrent awa migrate of the same set while the applying tool's transaction lasts.\n${lock}${body}${ledgerRow}`
}

const exportHeaderFor = (
  layout: ExportLayout,
  style: TransactionStyle,
  pgmqProvider: PgmqProvider | undefined,
): string =>
  [
    `-- Exported by awa: layout ${layout}, transaction style ${style}${
      style === "none"
        ? " (no BEGIN/COMMIT inside: apply each file in a transaction, as dbmate, Flyway, sqitch and psql --single-transaction do)"
        : " (each file commits on its own: apply with plain psql -f)"
    }.`,
    ...(pgmqProvider === undefined
      ? []
      : [
          `-- pgmq provider: ${pgmqProvider} (choose with --pgmq-provider existing|extension|sql; awa migrate detects it from the database).`,
        ]),
  ]
    .map((l) => `${l}\n`)
    .join("")

/**
 * Renders everything an external migration tool needs to reproduce the schema `awa migrate`
 * produces, ledger rows included, grouped by target database. Needs no database.
 */
export const renderScripts = (
  options: RenderSqlOptions = {},
):
  | ReadonlyArray<TargetScript>
  | UnknownMigrationSet
  | InvalidIdentifier
  | InvalidMigratorOptions
  | InvalidTemplateParameter => {
  const selected = selectSets(options)
  if (!Array.isArray(selected)) return selected as UnknownMigrationSet
  const names = selected as ReadonlyArray<MigrationSetName>
  const style = options.transactionStyle ?? "none"
  if (!transactionStyles.includes(style)) {
    return new InvalidMigratorOptions({
      reason: `Unknown transaction style "${String(style)}". Use one of: ${transactionStyles.join(", ")}.`,
    })
  }
  const layout = options.layout ?? "split"
  if (!exportLayouts.includes(layout)) {
    return new InvalidMigratorOptions({
      reason: `Unknown export layout "${String(layout)}". Use one of: ${exportLayouts.join(", ")}.`,
    })
  }
  const schemas = ["awa"]
  for (const s of options.queueStorageSchemas ?? []) {
    const checked = validateSchemaName(s)
    if (typeof checked !== "string") return checked
    if (!schemas.includes(checked)) schemas.push(checked)
  }
  const ringSizes = ringSizeParams(options)
  if (ringSizes instanceof InvalidTemplateParameter) return ringSizes
  const pgmqProvider = names.includes("pgmq") ? (options.pgmqProvider ?? "sql") : undefined
  const byRole = new Map<DatabaseRole, Array<RenderedMigration>>()
  for (const name of names) {
    const set = getMigrationSet(name)
    const paramSets =
      name === "queue-storage"
        ? schemas.map((schema) => ({ ...ringSizes, schema }))
        : name === "pgmq"
          ? [{ provider: pgmqProvider ?? "sql" }]
          : [{}]
    const role: DatabaseRole = layout === "single" ? "primary" : set.role
    const list = byRole.get(role) ?? []
    for (const params of paramSets) list.push(...renderSet(set, params))
    byRole.set(role, list)
  }
  const describe: Record<DatabaseRole, string> =
    layout === "single"
      ? {
          primary: "the one database (DATABASE_URL) that holds every set, pgmq included",
          pgmq: "the one database (DATABASE_URL)",
        }
      : {
          primary: "the primary database (DATABASE_URL)",
          pgmq: "the pgmq database (PGMQ_DATABASE_URL)",
        }
  const header = exportHeaderFor(layout, style, pgmqProvider)
  return [...byRole.entries()].map(([role, rendered]) => ({
    role,
    description: describe[role],
    header,
    files: [
      {
        fileName: "0000_awa_migrator_ledger.sql",
        sql: `-- The awa migrator's ledger, once per target database.\n${header}${ledgerBootstrapSql}`,
      },
      ...rendered.map((r, i) => ({
        fileName: `${String(i + 1).padStart(4, "0")}_${r.migration.set.replaceAll("-", "_")}_${r.instance}_v${String(r.migration.version).padStart(4, "0")}_${r.migration.name}.sql`,
        sql: wrap(r, style, header),
      })),
    ],
  }))
}

/** The marker line that starts each target database's section in `renderSqlText`. */
export const targetMarker = (role: DatabaseRole): string => `-- ==== awa target database: ${role} ====`

/** Renders the scripts as one text, one section per target database (see `targetMarker`). */
export const renderSqlText = (scripts: ReadonlyArray<TargetScript>): string =>
  scripts
    .map(
      (t) =>
        `${targetMarker(t.role)}\n-- Apply this section to ${t.description}.\n${t.header}\n${t.files.map((f) => `-- file: ${f.fileName}\n${f.sql.trimEnd()}\n`).join("\n")}`,
    )
    .join("\n")

/**
 * Writes the scripts as one file per migration, a folder per target database, with names that
 * sort in apply order. Refuses a folder that already holds files, so nothing is overwritten.
 */
export const extractScripts = (
  dir: string,
  scripts: ReadonlyArray<TargetScript>,
): ReadonlyArray<string> | InvalidMigratorOptions => {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    return new InvalidMigratorOptions({
      reason: `The folder ${dir} is not empty; choose an empty or new folder for --extract-to so nothing is overwritten.`,
    })
  }
  const written: Array<string> = []
  for (const target of scripts) {
    const folder = join(dir, target.role)
    mkdirSync(folder, { recursive: true })
    for (const file of target.files) {
      const path = join(folder, file.fileName)
      writeFileSync(path, file.sql)
      written.push(path)
    }
  }
  return written
}
