import { prepareQueueStorageSchema } from "@awa/migrator"
import { toExecutor } from "@awa/runtime/PgExecutor"
import { makeQueueStorageEngine } from "@awa/runtime/QueueStorageEngine"
import { type FlagSpec, flagHelp, parseCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { checkDatabaseUrl, databaseUrlFrom, resolvePooler, withDatabase } from "../internal/Database.js"
import { formatTable, type Output } from "../Output.js"
import { UsageError, unknownWord } from "../UsageError.js"
import { connectionFlags } from "./migrate.js"

const prepareFlags: Record<string, FlagSpec> = {
  "database-url": connectionFlags["database-url"] as FlagSpec,
  schema: {
    type: "string",
    description: "the schema to install the queue-storage substrate into (required)",
  },
  reset: {
    type: "boolean",
    description: "drop and re-create the schema first (only a schema awa prepared and nothing else uses)",
  },
  json: { type: "boolean", description: "print the report as JSON" },
  help: { type: "boolean", short: "h", description: "show this help" },
}

const rebuildFlags: Record<string, FlagSpec> = {
  "database-url": connectionFlags["database-url"] as FlagSpec,
  schema: { type: "string", description: "the queue-storage schema (default awa)" },
  json: { type: "boolean", description: "print the result as JSON" },
  help: { type: "boolean", short: "h", description: "show this help" },
}

/** Help text of `awa storage`. */
export const storageHelp = `Usage: awa storage prepare-queue-storage-schema --schema NAME [--reset] [flags]
       awa storage rebuild-terminal-counters [--schema NAME] [--json] [flags]

Installs (or upgrades) the queue-storage migration set in a custom schema, ledgered per schema so that
later \`awa migrate\` runs upgrade it too. --reset drops the schema first, but only a schema awa prepared
that holds nothing else: it is refused (exit 6, nothing changed) for schema awa, a schema holding canonical
tables, one awa did not prepare, one holding relations awa did not create, and one whose drop would also
take objects outside it (a view or a foreign key elsewhere that depends on it).

Flags:
${flagHelp(prepareFlags)}

rebuild-terminal-counters recomputes a queue-storage schema's live terminal counters (the source of the
completed, failed and cancelled counts in \`awa queue stats\`) from the terminal jobs it stores, under a lock
on the counter table: for recovery after a manual change, and for upgrades. Pruned history stays in the
rollups and is not touched.

Flags:
${flagHelp(rebuildFlags)}`

const rebuildTerminalCounters = async (rest: ReadonlyArray<string>, output: Output): Promise<number> => {
  const parsed = parseCommandLine("storage rebuild-terminal-counters", rest, rebuildFlags)
  if (parsed instanceof UsageError) throw parsed
  if (parsed.flags.help) {
    output.out(storageHelp)
    return ExitCode.ok
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError({
      reason: `awa storage rebuild-terminal-counters takes no arguments (got ${parsed.positionals.join(" ")}); name the schema with --schema.`,
    })
  }
  const schema = typeof parsed.flags.schema === "string" ? parsed.flags.schema : "awa"
  let engine: ReturnType<typeof makeQueueStorageEngine>
  try {
    engine = makeQueueStorageEngine({ schema })
  } catch (error) {
    throw new UsageError({
      reason: `--schema ${JSON.stringify(schema)} is not a queue-storage schema name: ${error instanceof Error ? error.message : String(error)}`,
    })
  }
  const rows = await withDatabase(parsed.flags, (pool) => engine.rebuildTerminalCounters(toExecutor(pool)))
  output.out(
    parsed.flags.json
      ? JSON.stringify({ schema, counterRows: rows }, null, 2)
      : `Rebuilt the terminal counters of schema ${schema}: ${rows} counter row(s).`,
  )
  return ExitCode.ok
}

/** Runs `awa storage <subcommand>`; returns the exit code. */
export const runStorage = async (argv: ReadonlyArray<string>, output: Output): Promise<number> => {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    output.out(storageHelp)
    return sub === undefined ? ExitCode.usage : ExitCode.ok
  }
  if (sub === "rebuild-terminal-counters") return rebuildTerminalCounters(rest, output)
  if (sub !== "prepare-queue-storage-schema")
    throw unknownWord("storage command", sub, ["prepare-queue-storage-schema", "rebuild-terminal-counters"])
  const parsed = parseCommandLine("storage prepare-queue-storage-schema", rest, prepareFlags)
  if (parsed instanceof UsageError) throw parsed
  if (parsed.flags.help) {
    output.out(storageHelp)
    return ExitCode.ok
  }
  const schema = parsed.flags.schema
  if (typeof schema !== "string")
    throw new UsageError({ reason: "--schema NAME is required (for example --schema tenant_a)." })
  // Its migrations run in transactions under transaction-scoped locks: any pooler mode works; check the value.
  resolvePooler(parsed.flags)
  const found = databaseUrlFrom({ name: "database-url", value: parsed.flags["database-url"] }, "DATABASE_URL")
  if (found !== undefined) checkDatabaseUrl("primary", found.url, found.source)
  const report = await prepareQueueStorageSchema({
    databaseUrl: parsed.flags["database-url"] as string | undefined,
    schema,
    reset: parsed.flags.reset === true,
  })
  if (parsed.flags.json) output.out(JSON.stringify(report, null, 2))
  else {
    output.out(
      `${report.applied.length === 0 ? `Schema ${schema} is already up to date.` : `Applied ${report.applied.length} migration(s) to schema ${schema}.`}\n${formatTable(
        ["set", "instance", "applied", "latest"],
        report.status.map((s) => [s.set, s.instance, String(s.applied), String(s.latest)]),
      )}`,
    )
  }
  return ExitCode.ok
}
