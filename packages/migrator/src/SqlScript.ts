import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  type DatabaseRole,
  type InvalidIdentifier,
  InvalidMigratorOptions,
  type UnknownMigrationSet,
} from "@awa/model"
import { ledgerBootstrapSql } from "./internal/bundledMigrations.generated.js"
import {
  getMigrationSet,
  type MigrationSetName,
  type RenderedMigration,
  renderSet,
  type SetSelection,
  selectSets,
  validateSchemaName,
} from "./MigrationSet.js"

/** What to render: the set selection, plus extra queue-storage schemas. No database is needed. */
export interface RenderSqlOptions extends SetSelection {
  /** Extra queue-storage schemas to render besides `awa`. */
  readonly queueStorageSchemas?: ReadonlyArray<string> | undefined
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
  readonly files: ReadonlyArray<ScriptFile>
}

const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`

const wrap = (r: RenderedMigration): string => {
  const m = r.migration
  const ledgerRow =
    "INSERT INTO awa_migrator.ledger (migration_set, instance, version, name, checksum, params, duration_ms)\n" +
    `  VALUES (${literal(m.set)}, ${literal(r.instance)}, ${m.version}, ${literal(m.name)}, ${literal(r.checksum)}, ${literal(JSON.stringify(r.params))}::jsonb, 0);\n`
  const header = `-- awa migration ${m.set}/${r.instance} version ${m.version} (${m.file}), checksum ${r.checksum}\n`
  const body =
    r.sql.trim() === ""
      ? `-- (no statements for parameters ${JSON.stringify(r.params)})\n`
      : `${r.sql.trimEnd()}\n`
  if (m.directives.noTransaction) return `${header}${body}${ledgerRow}`
  const lock = `SELECT pg_advisory_xact_lock(hashtext('awa_migrator'), hashtext(${literal(m.set)} || '/' || ${literal(r.instance)}));\n`
  return `${header}BEGIN;\n${lock}${body}${ledgerRow}COMMIT;\n`
}

/**
 * Renders everything an external migration tool needs to reproduce the schema `awa migrate`
 * produces, ledger rows included, grouped by target database. Needs no database.
 */
export const renderScripts = (
  options: RenderSqlOptions = {},
): ReadonlyArray<TargetScript> | UnknownMigrationSet | InvalidIdentifier | InvalidMigratorOptions => {
  const selected = selectSets(options)
  if (!Array.isArray(selected)) return selected as UnknownMigrationSet
  const names = selected as ReadonlyArray<MigrationSetName>
  const schemas = ["awa"]
  for (const s of options.queueStorageSchemas ?? []) {
    const checked = validateSchemaName(s)
    if (typeof checked !== "string") return checked
    if (!schemas.includes(checked)) schemas.push(checked)
  }
  const byRole = new Map<DatabaseRole, Array<RenderedMigration>>()
  for (const name of names) {
    const set = getMigrationSet(name)
    const paramSets =
      name === "queue-storage"
        ? schemas.map((schema) => ({ schema }))
        : name === "pgmq"
          ? [{ provider: options.pgmqProvider ?? "sql" }]
          : [{}]
    const list = byRole.get(set.role) ?? []
    for (const params of paramSets) list.push(...renderSet(set, params))
    byRole.set(set.role, list)
  }
  const describe: Record<DatabaseRole, string> = {
    primary: "the primary database (DATABASE_URL)",
    pgmq: "the pgmq database (PGMQ_DATABASE_URL; the primary database in single-database mode)",
  }
  return [...byRole.entries()].map(([role, rendered]) => ({
    role,
    description: describe[role],
    files: [
      { fileName: "0000_awa_migrator_ledger.sql", sql: ledgerBootstrapSql },
      ...rendered.map((r, i) => ({
        fileName: `${String(i + 1).padStart(4, "0")}_${r.migration.set.replaceAll("-", "_")}_${r.instance}_v${String(r.migration.version).padStart(4, "0")}_${r.migration.name}.sql`,
        sql: wrap(r),
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
        `${targetMarker(t.role)}\n-- Apply this section to ${t.description}.\n\n${t.files.map((f) => `-- file: ${f.fileName}\n${f.sql.trimEnd()}\n`).join("\n")}`,
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
