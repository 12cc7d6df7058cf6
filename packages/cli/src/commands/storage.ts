import { prepareQueueStorageSchema } from "@awa/migrator"
import { type FlagSpec, flagHelp, parseCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { checkDatabaseUrl, databaseUrlFrom, resolvePooler } from "../internal/Database.js"
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

/** Help text of `awa storage`. */
export const storageHelp = `Usage: awa storage prepare-queue-storage-schema --schema NAME [--reset] [flags]

Installs (or upgrades) the queue-storage migration set in a custom schema, ledgered per schema so that
later \`awa migrate\` runs upgrade it too. --reset drops the schema first, but only a schema awa prepared
that holds nothing else: it is refused (exit 6, nothing changed) for schema awa, a schema holding canonical
tables, one awa did not prepare, one holding relations awa did not create, and one whose drop would also
take objects outside it (a view or a foreign key elsewhere that depends on it).

Flags:
${flagHelp(prepareFlags)}`

/** Runs `awa storage <subcommand>`; returns the exit code. */
export const runStorage = async (argv: ReadonlyArray<string>, output: Output): Promise<number> => {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    output.out(storageHelp)
    return sub === undefined ? ExitCode.usage : ExitCode.ok
  }
  if (sub !== "prepare-queue-storage-schema")
    throw unknownWord("storage command", sub, ["prepare-queue-storage-schema"])
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
