import { existsSync, statSync } from "node:fs"
import {
  type ExportLayout,
  exportLayouts,
  extractMigrationSql,
  getMigrationSet,
  isSplit,
  type MigrateOptions,
  migrate,
  migrationStatus,
  type PlannedMigration,
  parsePgmqProvider,
  planMigrations,
  type RingSizeOptions,
  renderMigrationSql,
  renderSqlText,
  type SetStatus,
  selectSets,
  transactionStyles,
  validateMigrateOptions,
  validateTemplateParam,
} from "@awa/migrator"
import { PoolerConflict } from "@awa/model/Pooler"
import { exclusive, type FlagSpec, flagHelp, parseCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { checkDatabaseUrl, databaseUrlFrom, resolvePooler } from "../internal/Database.js"
import { formatTable, type Output } from "../Output.js"
import { UsageError } from "../UsageError.js"

/** Flags shared by every command that connects to a database. */
export const connectionFlags: Record<string, FlagSpec> = {
  "database-url": { type: "string", description: "primary database (default: $DATABASE_URL)" },
  "pgmq-database-url": {
    type: "string",
    description: "pgmq database (default: $PGMQ_DATABASE_URL, else the primary)",
  },
}

/** `--queue-ring-slots` and `--claim-ring-slots`: the ring sizes of a queue-storage schema being installed. */
export const ringSizeFlags: Record<string, FlagSpec> = {
  "queue-ring-slots": {
    type: "string",
    description:
      "queue-ring slots (partitions per queue-ring table) of a queue-storage schema this installs: 2..64, default 16; fixed once installed",
  },
  "claim-ring-slots": {
    type: "string",
    description:
      "claim-ring slots (partitions of the claim receipts) of a queue-storage schema this installs: 2..64, default 8; fixed once installed",
  },
}

/**
 * Reads `--queue-ring-slots` / `--claim-ring-slots`, failing with the migrator's typed
 * `InvalidTemplateParameter` (exit 2) for anything but a whole number in range.
 */
export const ringSizesFrom = (f: Readonly<Record<string, unknown>>): RingSizeOptions => {
  const specs = getMigrationSet("queue-storage").params
  const read = (flag: string, param: string): number | undefined => {
    const value = f[flag]
    if (value === undefined) return undefined
    const checked = validateTemplateParam("queue-storage", param, specs[param], String(value))
    if (typeof checked !== "string") throw checked
    return Number(checked)
  }
  return {
    queueRingSlots: read("queue-ring-slots", "queue_ring_slots"),
    claimRingSlots: read("claim-ring-slots", "claim_ring_slots"),
  }
}

const flags: Record<string, FlagSpec> = {
  ...connectionFlags,
  "with-pgmq": { type: "boolean", description: "also apply the optional pgmq set (role pgmq)" },
  "pgmq-provider": { type: "string", description: "force the pgmq provider: existing | extension | sql" },
  set: { type: "string", multiple: true, description: "only these sets: canonical, queue-storage, pgmq" },
  status: { type: "boolean", description: "show applied / pending / drift per database and set" },
  json: {
    type: "boolean",
    description: "print data as JSON (with --status, --dry-run, or the apply report)",
  },
  "dry-run": { type: "boolean", description: "print the plan and its SQL; change nothing" },
  sql: {
    type: "boolean",
    description: "print all SQL (ledger rows included) grouped by target database; no database needed",
  },
  "extract-to": {
    type: "string",
    description: "write one file per migration into DIR/<database>/; no database needed",
  },
  "transaction-style": {
    type: "string",
    description:
      "with --sql/--extract-to: none (default; no BEGIN/COMMIT in the files, for tools that wrap each file in a transaction) | per-file (each file commits on its own, for plain psql -f)",
  },
  layout: {
    type: "string",
    description:
      "with --sql/--extract-to: single (one database, one ledger bootstrap) | split (a primary and a pgmq target); default: split when a pgmq database URL other than the primary's is given",
  },
  ...ringSizeFlags,
  help: { type: "boolean", short: "h", description: "show this help" },
}

/** Help text of `awa migrate`. */
export const migrateHelp = `Usage: awa migrate [flags]

Applies the canonical and queue-storage (schema awa) migration sets to the primary database, and the
pgmq set to the pgmq database with --with-pgmq. Each migration commits with its ledger row; running it
again changes nothing. Refuses a database ahead of the code or with drifted migrations.

--queue-ring-slots / --claim-ring-slots size the rings of schema awa when this run installs it (with --sql and
--extract-to, of the SQL written). They are fixed once installed: later runs keep the installed sizes, and
asking for other ones is refused (exit 4) with the installed sizes named; custom schemas keep their own.

Flags:
${flagHelp(flags)}`

const statusRows = (statuses: ReadonlyArray<SetStatus>) =>
  formatTable(
    ["database", "target", "set", "instance", "applied", "latest", "pending", "drift"],
    statuses.map((s) => [
      s.role,
      s.target,
      s.set,
      s.instance,
      String(s.applied),
      String(s.latest),
      s.pending.length === 0 ? "-" : s.pending.map((p) => p.version).join(","),
      s.ahead
        ? "AHEAD OF CODE"
        : s.drift.length === 0
          ? "-"
          : `DRIFT ${s.drift.map((d) => d.version).join(",")}`,
    ]),
  )

/**
 * `--extract-to DIR`: writes the files, turning a path that cannot be a folder (an existing file, a file on
 * the way, no permission) into a usage error instead of a stack trace.
 */
const extractTo = (
  dir: string,
  options: Parameters<typeof extractMigrationSql>[1],
): ReadonlyArray<string> => {
  if (dir.trim() === "")
    throw new UsageError({ reason: "--extract-to needs a folder, e.g. --extract-to sql/." })
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new UsageError({
      reason: `--extract-to ${dir} is an existing file, not a folder. Choose an empty or new folder.`,
    })
  }
  try {
    return extractMigrationSql(dir, options)
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      throw new UsageError({
        reason: `--extract-to ${dir}: cannot write there (${error instanceof Error ? error.message : code}). Choose a folder you can create and write to.`,
      })
    }
    throw error
  }
}

/** Reads an enumerated flag value, or fails with a usage error listing the choices. */
const oneOf = <T extends string>(flag: string, value: unknown, choices: ReadonlyArray<T>): T | undefined => {
  if (value === undefined) return undefined
  if (typeof value === "string" && (choices as ReadonlyArray<string>).includes(value)) return value as T
  throw new UsageError({
    reason: `--${flag} must be one of: ${choices.join(", ")} (got "${String(value)}").`,
  })
}

/** Says which migrations were recorded without statements because their `awa:when` names other parameters. */
const emptyNote = (steps: ReadonlyArray<PlannedMigration>, verb: string): string => {
  const empty = steps.filter((s) => s.empty)
  if (empty.length === 0) return ""
  return `\n${verb} ${empty.length} migration(s) as ledger rows only (no statements for these parameters):\n${empty
    .map((s) => {
      const when = Object.entries(s.appliesWhen)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")
      return `  ${s.set}/${s.instance} ${s.file}${when === "" ? "" : ` (only for ${when})`}`
    })
    .join("\n")}`
}

/** Runs `awa migrate`; returns the exit code. */
export const runMigrate = async (argv: ReadonlyArray<string>, output: Output): Promise<number> => {
  const parsed = parseCommandLine("migrate", argv, flags)
  if (parsed instanceof UsageError) throw parsed
  const f = parsed.flags
  if (f.help) {
    output.out(migrateHelp)
    return ExitCode.ok
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError({
      reason: `awa migrate takes no arguments (got "${parsed.positionals.join(" ")}").`,
    })
  }
  const conflict = exclusive(f, ["status", "dry-run", "sql", "extract-to"])
  if (conflict) throw conflict
  const exporting = f.sql === true || f["extract-to"] !== undefined
  for (const flag of ["transaction-style", "layout"] as const) {
    if (f[flag] !== undefined && !exporting) {
      throw new UsageError({ reason: `--${flag} only applies to --sql and --extract-to.` })
    }
  }
  const transactionStyle = oneOf("transaction-style", f["transaction-style"], transactionStyles)
  const explicitLayout = oneOf("layout", f.layout, exportLayouts)
  if (f.json && (f.sql || f["extract-to"] !== undefined)) {
    throw new UsageError({ reason: "--json does not apply to --sql or --extract-to (they print SQL)." })
  }
  let pgmqProvider: MigrateOptions["pgmqProvider"]
  if (typeof f["pgmq-provider"] === "string") {
    const provider = parsePgmqProvider(f["pgmq-provider"])
    if (typeof provider !== "string") throw provider
    pgmqProvider = provider
  }
  const pooler = resolvePooler(f)
  const sets = f.set as ReadonlyArray<string> | undefined
  const selected = selectSets({ sets })
  if (!Array.isArray(selected)) throw selected
  if (f["with-pgmq"] === true && sets !== undefined && !selected.includes("pgmq")) {
    throw new UsageError({
      reason: `--with-pgmq and --set ${sets.join(",")} conflict: --set picks the sets, and pgmq is not among them. Add --set pgmq, or drop --with-pgmq.`,
    })
  }
  const options = {
    databaseUrl: f["database-url"] as string | undefined,
    pgmqDatabaseUrl: f["pgmq-database-url"] as string | undefined,
    withPgmq: f["with-pgmq"] === true,
    sets,
    pgmqProvider,
    ...ringSizesFrom(f),
  }
  // The same option checks for every mode, so --sql and --extract-to refuse what migrate refuses.
  const invalid = validateMigrateOptions(options)
  if (invalid !== undefined) throw invalid

  if (exporting) {
    // The layout follows the topology migrate would use: split only when the pgmq database is another one.
    const layout: ExportLayout =
      explicitLayout ??
      (isSplit({
        databaseUrl: options.databaseUrl ?? process.env.DATABASE_URL ?? "",
        pgmqDatabaseUrl: options.pgmqDatabaseUrl ?? process.env.PGMQ_DATABASE_URL,
      })
        ? "split"
        : "single")
    const exportOptions = { ...options, transactionStyle: transactionStyle ?? "none", layout }
    if (f.sql) {
      output.out(renderSqlText(renderMigrationSql(exportOptions)))
      return ExitCode.ok
    }
    const written = extractTo(f["extract-to"] as string, exportOptions)
    const pgmqIncluded = (selectSets(options) as ReadonlyArray<string>).includes("pgmq")
    output.out(
      `Wrote ${written.length} files (layout ${layout}, transaction style ${exportOptions.transactionStyle}${
        pgmqIncluded ? `, pgmq provider ${pgmqProvider ?? "sql"}` : ""
      }):\n${written.map((p) => `  ${p}`).join("\n")}`,
    )
    return ExitCode.ok
  }
  // Named problems (a bad port, and whether the URL came from the environment) before the migrator's own checks.
  for (const [flag, envVar, role] of [
    ["database-url", "DATABASE_URL", "primary"],
    ["pgmq-database-url", "PGMQ_DATABASE_URL", "pgmq"],
  ] as const) {
    const found = databaseUrlFrom({ name: flag, value: f[flag] }, envVar)
    if (found !== undefined) checkDatabaseUrl(role, found.url, found.source)
  }
  if (f.status) {
    const statuses = await migrationStatus(options)
    output.out(f.json ? JSON.stringify(statuses, null, 2) : statusRows(statuses))
    return statuses.some((s) => s.ahead || s.drift.length > 0) ? ExitCode.refused : ExitCode.ok
  }
  if (f["dry-run"]) {
    const plan = await planMigrations(options)
    if (f.json) output.out(JSON.stringify(plan, null, 2))
    else if (plan.length === 0) output.out("Nothing to apply: every selected migration is already applied.")
    else {
      const changing = plan.filter((s) => !s.empty)
      output.out(`Would apply ${changing.length} migration(s):`)
      for (const step of changing) {
        output.out(
          `\n-- ${step.role} (${step.target}): ${step.set}/${step.instance} ${step.file}\n${step.sql.trimEnd()}`,
        )
      }
      const note = emptyNote(plan, "Would record")
      if (note !== "") output.out(note)
    }
    return ExitCode.ok
  }
  if (pooler === "transaction") {
    // Every migration runs in one transaction under a transaction-scoped advisory lock, which works through
    // a transaction pooler; one marked no-transaction would need a session lock, which does not.
    const sessionBound = (await planMigrations(options)).find((step) => step.noTransaction)
    if (sessionBound !== undefined) {
      throw new PoolerConflict({
        setting: `migration ${sessionBound.set}/${sessionBound.file}`,
        reason:
          "it runs outside a transaction, serialized by a session advisory lock that a transaction pooler does not keep",
        fix: "Run this awa migrate against Postgres directly (a --database-url that bypasses the pooler).",
      })
    }
  }
  const report = await migrate(options)
  if (f.json) output.out(JSON.stringify(report, null, 2))
  else {
    // Only migrations that changed something are listed as applied; ledger-only ones are named apart.
    const changed = report.applied.filter((a) => !a.empty)
    output.out(
      report.applied.length === 0
        ? "Already up to date: nothing to apply."
        : `${
            changed.length === 0
              ? "Applied no migration with statements."
              : `Applied ${changed.length} migration(s):\n${formatTable(
                  ["database", "set/instance", "migration", "took"],
                  changed.map((a) => [a.role, `${a.set}/${a.instance}`, a.file, `${a.durationMs} ms`]),
                )}`
          }${emptyNote(report.applied, "Recorded")}`,
    )
    output.out(`\n${statusRows(report.status)}`)
  }
  return ExitCode.ok
}
