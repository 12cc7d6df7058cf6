import { closestMatch } from "@awa/model"
import type { Admin } from "@awa/runtime/Admin"
import type { QueueSettings } from "@awa/runtime/Engine"
import type { PgPool } from "@awa/runtime/PgExecutor"
import type { ParsedCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { databaseUrlFlag, jsonFlag } from "../internal/CommonFlags.js"
import { withDatabase } from "../internal/Database.js"
import { adminFor, engineFlags } from "../internal/EngineFlags.js"
import { noExtraArguments, queueValue } from "../internal/FlagValues.js"
import { queueSettingsLine, queueStatsTable, toJson } from "../internal/JobView.js"
import { runGroup, type Subcommand } from "../internal/Subcommands.js"
import type { Output } from "../Output.js"
import { UsageError, unknownWord } from "../UsageError.js"

const commonFlags = { json: jsonFlag, "database-url": databaseUrlFlag, ...engineFlags }

const queueArgument = (command: string, value: string | undefined): string => {
  if (value === undefined) {
    throw new UsageError({
      reason: `awa queue ${command} needs a queue name (for example: awa queue ${command} default).`,
    })
  }
  return queueValue(value, "queue") as string
}

const printSettings = (parsed: ParsedCommandLine, output: Output, settings: QueueSettings): number => {
  output.out(parsed.flags.json ? toJson(settings) : queueSettingsLine(settings))
  return ExitCode.ok
}

/** Known queues listed by name in the "no jobs yet" note when there are at most this many. */
const listedQueues = 10

/**
 * Changes a queue's settings ahead of its first job is legitimate, but a typo would look like success too:
 * a queue nobody has used yet gets a note on stderr, with the closest known name or the known names.
 */
const unknownQueueNote = async (admin: Admin, pool: PgPool, queue: string): Promise<string | undefined> => {
  const known = (await admin.queueStats(pool)).map((s) => s.queue)
  if (known.includes(queue)) return undefined
  const suggestion = closestMatch(queue, known)
  const hint =
    suggestion !== undefined
      ? ` Did you mean "${suggestion}"?`
      : known.length === 0
        ? " No queue has jobs yet."
        : known.length <= listedQueues
          ? ` Known queues: ${known.join(", ")}.`
          : ""
  return `Note: queue ${queue} has no jobs, DLQ entries or settings yet; the change applies to the jobs it gets later.${hint}`
}

const setting =
  (name: string, change: (admin: Admin, pool: PgPool, queue: string) => Promise<QueueSettings>) =>
  async (parsed: ParsedCommandLine, output: Output): Promise<number> => {
    const [raw, ...extra] = parsed.positionals
    const queue = queueArgument(name, raw)
    noExtraArguments(`queue ${name}`, extra)
    return changeSetting(parsed, output, queue, (admin, pool) => change(admin, pool, queue))
  }

const changeSetting = async (
  parsed: ParsedCommandLine,
  output: Output,
  queue: string,
  change: (admin: Admin, pool: PgPool) => Promise<QueueSettings>,
): Promise<number> => {
  const admin = adminFor(parsed.flags)
  const { note, settings } = await withDatabase(parsed.flags, async (pool) => ({
    note: await unknownQueueNote(admin, pool, queue),
    settings: await change(admin, pool),
  }))
  if (note !== undefined) output.err(note)
  return printSettings(parsed, output, settings)
}

const stats: Subcommand = {
  usage: "[--queue Q] [flags]",
  summary: "exact job counts per queue and state, DLQ sizes, paused and DLQ settings",
  description: `Prints exact job counts per queue and state, the number of dead-lettered jobs, and whether each queue
is paused and has its dead-letter queue enabled. Queues appear once they have jobs, DLQ entries or settings.`,
  flags: { queue: { type: "string", description: "only this queue" }, ...commonFlags },
  run: async (parsed, output) => {
    noExtraArguments("queue stats", parsed.positionals)
    const only = queueValue(parsed.flags.queue)
    const admin = adminFor(parsed.flags)
    const all = await withDatabase(parsed.flags, (pool) => admin.queueStats(pool))
    const rows = only === undefined ? all : all.filter((s) => s.queue === only)
    if (parsed.flags.json) output.out(toJson(rows))
    else
      output.out(
        rows.length === 0
          ? only === undefined
            ? "No queues yet."
            : `Queue ${only} has no jobs.`
          : queueStatsTable(rows),
      )
    return ExitCode.ok
  },
}

const pause: Subcommand = {
  usage: "QUEUE [flags]",
  summary: "stop workers claiming from a queue (running jobs finish; inserts still succeed)",
  description: `Pauses a queue: workers stop claiming its jobs; jobs already running finish, and new jobs can still be
inserted. Resume with awa queue resume.`,
  flags: commonFlags,
  run: setting("pause", (admin, pool, queue) => admin.pauseQueue(pool, queue)),
}

const resume: Subcommand = {
  usage: "QUEUE [flags]",
  summary: "let workers claim from a paused queue again",
  description: "Resumes a paused queue: workers claim its jobs again.",
  flags: commonFlags,
  run: setting("resume", (admin, pool, queue) => admin.resumeQueue(pool, queue)),
}

const dlq: Subcommand = {
  usage: "enable|disable QUEUE [flags]",
  summary: "enable or disable the dead-letter queue of a queue",
  description: `With the dead-letter queue enabled, jobs of the queue that exhaust their attempts (or fail at once) move
to the DLQ (see awa dlq) instead of staying in state failed. Affects jobs that fail from now on.`,
  flags: commonFlags,
  run: async (parsed, output) => {
    const [action, raw, ...extra] = parsed.positionals
    if (action !== "enable" && action !== "disable") {
      if (action === undefined) {
        throw new UsageError({
          reason:
            "awa queue dlq needs enable or disable and a queue name, e.g. awa queue dlq enable default.",
        })
      }
      throw unknownWord("queue dlq action", action, ["enable", "disable"])
    }
    const queue = queueArgument(`dlq ${action}`, raw)
    noExtraArguments(`queue dlq ${action}`, extra)
    return changeSetting(parsed, output, queue, (admin, pool) =>
      admin.setQueueDlq(pool, queue, action === "enable"),
    )
  },
}

/** What `awa queue` does. */
export const queueDescription =
  "Inspect queues and change their settings: counts per state, pause / resume, dead-letter queue."

/** Runs `awa queue <stats|pause|resume|dlq>`; returns the exit code. */
export const runQueue = (argv: ReadonlyArray<string>, output: Output): Promise<number> =>
  runGroup("queue", queueDescription, { stats, pause, resume, dlq }, argv, output)
