import { hostname, userInfo } from "node:os"
import { prepareQueueStorageSchema } from "@awa/migrator"
import { type Executor, toExecutor } from "@awa/runtime/PgExecutor"
import { makeQueueStorageEngine } from "@awa/runtime/QueueStorageEngine"
import {
  abortStorage,
  enterMixedStorage,
  finalizeStorage,
  prepareStorage,
  readStorageStatus,
  StorageGateRefused,
  type StorageStateName,
  type StorageStatus,
} from "@awa/runtime/StorageState"
import { type FlagSpec, flagHelp, parseCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { checkDatabaseUrl, databaseUrlFrom, resolvePooler, withDatabase } from "../internal/Database.js"
import { durationFlag, noExtraArguments } from "../internal/FlagValues.js"
import { formatTable, type Output } from "../Output.js"
import { UsageError, unknownWord } from "../UsageError.js"
import { connectionFlags, ringSizeFlags, ringSizesFrom } from "./migrate.js"

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
  ...ringSizeFlags,
  json: { type: "boolean", description: "print the report as JSON" },
  help: { type: "boolean", short: "h", description: "show this help" },
}

const rebuildFlags: Record<string, FlagSpec> = {
  "database-url": connectionFlags["database-url"] as FlagSpec,
  schema: { type: "string", description: "the queue-storage schema (default awa)" },
  json: { type: "boolean", description: "print the result as JSON" },
  help: { type: "boolean", short: "h", description: "show this help" },
}

const stateFlags: Record<string, FlagSpec> = {
  "database-url": connectionFlags["database-url"] as FlagSpec,
  json: { type: "boolean", description: "print the result as JSON" },
  help: { type: "boolean", short: "h", description: "show this help" },
}

const statusFlags: Record<string, FlagSpec> = {
  ...stateFlags,
  schema: {
    type: "string",
    description: "the queue-storage schema to inspect while canonical (default awa)",
  },
}

const prepareStateFlags: Record<string, FlagSpec> = {
  ...stateFlags,
  schema: { type: "string", description: "the queue-storage schema to move to (default awa)" },
}

const finalizeFlags: Record<string, FlagSpec> = {
  ...stateFlags,
  check: { type: "boolean", description: "only report whether finalize would pass now; change nothing" },
  wait: {
    type: "string",
    description:
      "retry while the canonical backlog drains, up to DURATION (e.g. 10m); other gates refuse at once",
  },
}

/** Help text of `awa storage`. */
export const storageHelp = `Usage: awa storage status [--json] [--schema NAME] [flags]
       awa storage prepare [--schema NAME] [flags]
       awa storage enter-mixed [flags]
       awa storage finalize [--check] [--wait DURATION] [flags]
       awa storage abort [flags]
       awa storage prepare-queue-storage-schema --schema NAME [--reset] [--queue-ring-slots N] [--claim-ring-slots N] [flags]
       awa storage rebuild-terminal-counters [--schema NAME] [--json] [flags]

The storage state says where jobs live, for every producer, worker and admin of the database:
  canonical -> prepare -> prepared -> enter-mixed -> mixed -> finalize -> active   (abort: back to canonical)
Each move checks its gate in the transaction that makes it, and a blocked gate exits 6 with nothing changed:
  prepare      needs the queue-storage substrate in the schema (awa migrate installs it in awa)
  enter-mixed  needs a live worker (heartbeat within 30s) able to serve queue storage
  finalize     needs every canonical job finished and no live canonical-only worker
               (--check reports without moving; --wait 10m retries while the backlog drains)
  abort        (from prepared or mixed) is refused once queue storage holds work
\`awa migrate\` never changes the state. \`awa storage status\` shows it, the backlog and the live workers.

Flags (status):
${flagHelp(statusFlags)}

Flags (finalize):
${flagHelp(finalizeFlags)}

Installs (or upgrades) the queue-storage migration set in a custom schema, ledgered per schema so that
later \`awa migrate\` runs upgrade it too. --reset drops the schema first, but only a schema awa prepared
that holds nothing else: it is refused (exit 6, nothing changed) for schema awa, a schema holding canonical
tables, one awa did not prepare, one holding relations awa did not create, and one whose drop would also
take objects outside it (a view or a foreign key elsewhere that depends on it). --queue-ring-slots and
--claim-ring-slots size the schema's rings when it is installed (defaults 16 and 8); a prepared schema keeps
its sizes, and asking for others is refused (exit 4) unless --reset re-creates it.

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

const actor = (): string => {
  let user = "unknown"
  try {
    user = userInfo().username
  } catch {
    // No user entry (some containers): keep "unknown".
  }
  return `${user}@${hostname()} (awa CLI)`
}

const nextStepFor = (status: StorageStatus): string => {
  switch (status.state) {
    case "canonical":
      return status.substratePresent
        ? "next: `awa storage prepare` to start moving to queue storage"
        : "next: install the queue-storage substrate (`awa migrate`), then `awa storage prepare`"
    case "prepared":
      return "next: start workers that serve queue storage, then `awa storage enter-mixed` (or `awa storage abort`)"
    case "mixed":
      return status.canonicalBacklog > 0
        ? `next: let workers drain the ${status.canonicalBacklog} canonical job(s), then \`awa storage finalize\``
        : "next: `awa storage finalize`"
    case "active":
      return "queue storage serves every job; nothing more to do"
  }
}

const statusText = (status: StorageStatus): string =>
  [
    `state                    ${status.state}`,
    `queue-storage schema     ${status.queueStorageSchema ?? "-"}`,
    `last changed             ${status.changedAt === null ? "never" : `${status.changedAt.toISOString()} by ${status.changedBy ?? "?"}`}`,
    `canonical backlog        ${status.canonicalBacklog} job(s)`,
    `substrate present        ${status.substratePresent ? "yes" : "no"}`,
    `queue storage holds work ${status.queueStorageHoldsWork ? "yes" : "no"}`,
    `live runtimes            ${status.liveRuntimes.length}`,
    ...(status.liveRuntimes.length === 0
      ? []
      : [
          formatTable(
            ["id", "host", "pid", "version", "engines", "last seen"],
            status.liveRuntimes.map((r) => [
              r.id,
              r.host,
              String(r.pid),
              r.version,
              r.engines.join(","),
              r.lastSeenAt.toISOString(),
            ]),
          ),
        ]),
    nextStepFor(status),
  ].join("\n")

const statusJson = (status: StorageStatus) => ({
  ...status,
  changedAt: status.changedAt?.toISOString() ?? null,
  liveRuntimes: status.liveRuntimes.map((r) => ({
    ...r,
    startedAt: r.startedAt.toISOString(),
    lastSeenAt: r.lastSeenAt.toISOString(),
  })),
})

type StateCommand = "status" | "prepare" | "enter-mixed" | "finalize" | "abort"

const stateCommands: Record<StateCommand, Record<string, FlagSpec>> = {
  status: statusFlags,
  prepare: prepareStateFlags,
  "enter-mixed": stateFlags,
  finalize: finalizeFlags,
  abort: stateFlags,
}

const isStateCommand = (sub: string): sub is StateCommand => Object.hasOwn(stateCommands, sub)

// What finalize would find now, without moving: the gate that would refuse it, or undefined.
const finalizeCheck = (status: StorageStatus): StorageGateRefused | undefined => {
  if (status.state !== "mixed")
    return new StorageGateRefused({
      transition: "finalize",
      gate: "state",
      reason: `finalize needs the storage state to be mixed, but it is ${status.state}`,
    })
  if (status.canonicalBacklog > 0)
    return new StorageGateRefused({
      transition: "finalize",
      gate: "canonical-backlog",
      reason: `${status.canonicalBacklog} canonical job(s) are not finished yet`,
    })
  const old = status.liveRuntimes.filter((r) => !r.engines.includes("queue_storage"))
  if (old.length > 0)
    return new StorageGateRefused({
      transition: "finalize",
      gate: "canonical-only-runtime",
      reason: `live runtime(s) that can serve only the canonical engine: ${old.map((r) => r.id).join(", ")}`,
    })
  return undefined
}

const runFinalize = async (x: Executor, waitMs: number | undefined): Promise<StorageStateName> => {
  const deadline = Date.now() + (waitMs ?? 0)
  for (;;) {
    try {
      return await finalizeStorage(x, { actor: actor() })
    } catch (error) {
      const retry =
        error instanceof StorageGateRefused && error.gate === "canonical-backlog" && Date.now() < deadline
      if (!retry) throw error
      await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(1, deadline - Date.now()))))
    }
  }
}

const runStateCommand = async (
  sub: StateCommand,
  rest: ReadonlyArray<string>,
  output: Output,
): Promise<number> => {
  const parsed = parseCommandLine(`storage ${sub}`, rest, stateCommands[sub])
  if (parsed instanceof UsageError) throw parsed
  const f = parsed.flags
  if (f.help) {
    output.out(storageHelp)
    return ExitCode.ok
  }
  noExtraArguments(`storage ${sub}`, parsed.positionals)
  const waitMs = sub === "finalize" ? durationFlag("wait", f.wait) : undefined
  if (sub === "finalize" && f.check === true && waitMs !== undefined)
    throw new UsageError({
      reason: "--check and --wait exclude each other: --check changes nothing and never waits.",
    })
  const schema = typeof f.schema === "string" ? f.schema : undefined
  return withDatabase(f, async (pool) => {
    const x = toExecutor(pool)
    if (sub === "status" || (sub === "finalize" && f.check === true)) {
      const status = await readStorageStatus(x, schema === undefined ? {} : { schema })
      if (sub === "status") {
        output.out(f.json ? JSON.stringify(statusJson(status), null, 2) : statusText(status))
        return ExitCode.ok
      }
      const blocked = finalizeCheck(status)
      if (f.json)
        output.out(
          JSON.stringify(
            { ready: blocked === undefined, gate: blocked?.gate ?? null, reason: blocked?.reason ?? null },
            null,
            2,
          ),
        )
      if (blocked !== undefined) throw blocked
      if (!f.json)
        output.out(
          "finalize would pass now: the canonical backlog is drained and every live runtime serves queue storage.",
        )
      return ExitCode.ok
    }
    const moved =
      sub === "prepare"
        ? await prepareStorage(x, { actor: actor(), ...(schema === undefined ? {} : { schema }) })
        : sub === "enter-mixed"
          ? await enterMixedStorage(x, { actor: actor() })
          : sub === "finalize"
            ? await runFinalize(x, waitMs)
            : await abortStorage(x, { actor: actor() })
    const status = await readStorageStatus(x)
    output.out(
      f.json
        ? JSON.stringify(statusJson(status), null, 2)
        : `Storage state is now ${moved}.\n${nextStepFor(status)}`,
    )
    return ExitCode.ok
  })
}

/** Runs `awa storage <subcommand>`; returns the exit code. */
export const runStorage = async (argv: ReadonlyArray<string>, output: Output): Promise<number> => {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    output.out(storageHelp)
    return sub === undefined ? ExitCode.usage : ExitCode.ok
  }
  if (sub === "rebuild-terminal-counters") return rebuildTerminalCounters(rest, output)
  if (isStateCommand(sub)) return runStateCommand(sub, rest, output)
  if (sub !== "prepare-queue-storage-schema")
    throw unknownWord("storage command", sub, [
      ...Object.keys(stateCommands),
      "prepare-queue-storage-schema",
      "rebuild-terminal-counters",
    ])
  const parsed = parseCommandLine("storage prepare-queue-storage-schema", rest, prepareFlags)
  if (parsed instanceof UsageError) throw parsed
  if (parsed.flags.help) {
    output.out(storageHelp)
    return ExitCode.ok
  }
  const schema = parsed.flags.schema
  if (typeof schema !== "string")
    throw new UsageError({ reason: "--schema NAME is required (for example --schema tenant_a)." })
  const ringSizes = ringSizesFrom(parsed.flags)
  // Its migrations run in transactions under transaction-scoped locks: any pooler mode works; check the value.
  resolvePooler(parsed.flags)
  const found = databaseUrlFrom({ name: "database-url", value: parsed.flags["database-url"] }, "DATABASE_URL")
  if (found !== undefined) checkDatabaseUrl("primary", found.url, found.source)
  const report = await prepareQueueStorageSchema({
    databaseUrl: parsed.flags["database-url"] as string | undefined,
    schema,
    reset: parsed.flags.reset === true,
    ...ringSizes,
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
