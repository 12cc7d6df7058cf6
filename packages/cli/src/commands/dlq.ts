import type { Admin, DlqTarget } from "@awa/runtime/Admin"
import type { PgPool } from "@awa/runtime/PgExecutor"
import { Data } from "effect"
import type { ParsedCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { databaseUrlFlag, jsonFlag, pageFlags } from "../internal/CommonFlags.js"
import { withDatabase } from "../internal/Database.js"
import { adminFor, engineFlags } from "../internal/EngineFlags.js"
import {
  cursorFlag,
  jobIdArgument,
  kindFlag,
  noExtraArguments,
  positiveIntFlag,
  queueValue,
} from "../internal/FlagValues.js"
import { deadLetterDetail, deadLetterTable, toJson } from "../internal/JobView.js"
import { inDeadLetterQueue } from "../internal/MisplacedJob.js"
import { runGroup, type Subcommand } from "../internal/Subcommands.js"
import type { Output } from "../Output.js"
import { UsageError } from "../UsageError.js"

/** A bulk DLQ retry or purge without an id, a filter or `--all`: refused before anything is touched. */
export class DlqTargetRequired extends Data.TaggedError("DlqTargetRequired")<{
  readonly command: "retry" | "purge"
}> {
  override get message(): string {
    return `Refusing to ${this.command} dead-lettered jobs without a target; nothing was changed. Give a job id, --queue Q and/or --kind K, or --all to ${this.command} every entry in the DLQ (e.g. awa dlq ${this.command} --queue emails).`
  }
}

const filterFlags = {
  queue: { type: "string", description: "only entries of this queue" },
  kind: { type: "string", description: "only entries of this job kind" },
} as const

const bulkFlags = {
  ...filterFlags,
  all: {
    type: "boolean",
    description: "every entry of the DLQ (required when no id, --queue or --kind is given)",
  },
  json: jsonFlag,
  "database-url": databaseUrlFlag,
  ...engineFlags,
} as const

/**
 * The target of `dlq retry` / `dlq purge`: one id, a filter (queue and/or kind), or `--all`. Anything else
 * is refused before connecting: bulk actions on the whole DLQ must be asked for explicitly.
 */
const bulkTarget = (command: "retry" | "purge", parsed: ParsedCommandLine): DlqTarget => {
  const [rawId, ...extra] = parsed.positionals
  noExtraArguments(`dlq ${command}`, extra)
  const queue = queueValue(parsed.flags.queue)
  const kind = kindFlag(parsed.flags.kind)
  const all = parsed.flags.all === true
  if (rawId !== undefined) {
    if (queue !== undefined || kind !== undefined || all) {
      throw new UsageError({
        reason: `awa dlq ${command} takes either a job id or --queue / --kind / --all, not both.`,
      })
    }
    return { id: jobIdArgument(`dlq ${command}`, rawId) }
  }
  if (all && (queue !== undefined || kind !== undefined)) {
    throw new UsageError({
      reason: `--all means every DLQ entry; drop it to ${command} only the entries matching --queue / --kind.`,
    })
  }
  if (!all && queue === undefined && kind === undefined) {
    throw new DlqTargetRequired({ command })
  }
  return {
    ...(queue === undefined ? {} : { queue }),
    ...(kind === undefined ? {} : { kind }),
    ...(all ? { all: true } : {}),
  }
}

/** Runs a retry or purge; for one id that is a live job rather than a DLQ entry, says so. */
const byId = <A>(
  admin: Admin,
  pool: PgPool,
  target: DlqTarget,
  operation: "retry" | "purge",
  use: () => Promise<A>,
): Promise<A> => ("id" in target ? inDeadLetterQueue(admin, pool, target.id, operation, use) : use())

const describeTarget = (target: DlqTarget): string =>
  "id" in target
    ? `job ${target.id}`
    : target.all === true
      ? "every entry"
      : [
          target.queue === undefined ? undefined : `queue ${target.queue}`,
          target.kind === undefined ? undefined : `kind ${target.kind}`,
        ]
          .filter((x) => x !== undefined)
          .join(" and ")

const list: Subcommand = {
  usage: "[--queue Q] [--kind K] [--limit N] [--cursor C] [flags]",
  summary: "list dead-lettered jobs, oldest first, a page at a time",
  description: `Lists DLQ entries (jobs that exhausted their attempts, or failed at once, on a queue with the DLQ
enabled), a page at a time (--limit, default 50). When more match, the output ends with the next page's
cursor: pass it as --cursor.`,
  flags: {
    ...filterFlags,
    ...pageFlags,
    "database-url": databaseUrlFlag,
    ...engineFlags,
  },
  run: async (parsed, output) => {
    const f = parsed.flags
    noExtraArguments("dlq list", parsed.positionals)
    const queue = queueValue(f.queue)
    const kind = kindFlag(f.kind)
    const limit = positiveIntFlag("limit", f.limit, 10_000) ?? 50
    const cursor = cursorFlag(f.cursor)
    const admin = adminFor(f)
    const page = await withDatabase(f, (pool) =>
      admin.listDlq(
        pool,
        { ...(queue === undefined ? {} : { queue }), ...(kind === undefined ? {} : { kind }) },
        { limit, ...(cursor === undefined ? {} : { cursor }) },
      ),
    )
    if (f.json) {
      output.out(toJson(page))
      return ExitCode.ok
    }
    output.out(
      page.items.length === 0
        ? "The dead-letter queue has no matching entries."
        : deadLetterTable(page.items),
    )
    if (page.nextCursor !== null) {
      output.out(`\nMore entries match: add --cursor ${page.nextCursor} for the next page.`)
    }
    return ExitCode.ok
  },
}

const get: Subcommand = {
  usage: "ID [flags]",
  summary: "show one dead-lettered job with every recorded error",
  description: "Shows one DLQ entry in full. Exits 7 when no DLQ entry has that id.",
  flags: { json: jsonFlag, "database-url": databaseUrlFlag, ...engineFlags },
  run: async (parsed, output) => {
    const [rawId, ...extra] = parsed.positionals
    const id = jobIdArgument("dlq get", rawId)
    noExtraArguments("dlq get", extra)
    const admin = adminFor(parsed.flags)
    const entry = await withDatabase(parsed.flags, (pool) =>
      inDeadLetterQueue(admin, pool, id, "get", () => admin.getDlq(pool, id)),
    )
    output.out(parsed.flags.json ? toJson(entry) : deadLetterDetail(entry))
    return ExitCode.ok
  },
}

const retry: Subcommand = {
  usage: "(ID | --queue Q | --kind K | --all) [flags]",
  summary: "move dead-lettered jobs back to their queues with fresh attempts",
  description: `Moves DLQ entries back to their queues as available jobs with a fresh attempt count (they keep their ids).
Give one job id, or a filter (--queue and/or --kind), or --all for every entry: without one of these the
command is refused (exit 6) and nothing changes. Exits 7 when an id is not in the DLQ.`,
  flags: bulkFlags,
  run: async (parsed, output) => {
    const target = bulkTarget("retry", parsed)
    const admin = adminFor(parsed.flags)
    const ids = await withDatabase(parsed.flags, (pool) =>
      byId(admin, pool, target, "retry", () => admin.retryDlq(pool, target)),
    )
    if (parsed.flags.json) output.out(toJson({ retried: ids.length, ids }))
    else
      output.out(
        ids.length === 0
          ? "all" in target && target.all === true
            ? "The dead-letter queue is empty; nothing changed."
            : `No DLQ entries match ${describeTarget(target)}; nothing changed.`
          : `Moved ${ids.length} job(s) from the DLQ back to their queues (${describeTarget(target)}): ${ids.slice(0, 20).join(", ")}${ids.length > 20 ? ", …" : ""}`,
      )
    return ExitCode.ok
  },
}

const purge: Subcommand = {
  usage: "(ID | --queue Q | --kind K | --all) [flags]",
  summary: "delete dead-lettered jobs for good",
  description: `Deletes DLQ entries permanently. Give one job id, or a filter (--queue and/or --kind), or --all to
delete every entry: without one of these the command is refused (exit 6) and nothing is deleted. Exits 7
when an id is not in the DLQ.`,
  flags: bulkFlags,
  run: async (parsed, output) => {
    const target = bulkTarget("purge", parsed)
    const admin = adminFor(parsed.flags)
    const purged = await withDatabase(parsed.flags, (pool) =>
      byId(admin, pool, target, "purge", () => admin.purgeDlq(pool, target)),
    )
    if (parsed.flags.json) output.out(toJson({ purged }))
    else output.out(`Purged ${purged} DLQ entr${purged === 1 ? "y" : "ies"} (${describeTarget(target)}).`)
    return ExitCode.ok
  },
}

/** What `awa dlq` does. */
export const dlqDescription =
  "The dead-letter queue: jobs that failed for good on queues with the DLQ enabled (awa queue dlq enable)."

/** Runs `awa dlq <list|get|retry|purge>`; returns the exit code. */
export const runDlq = (argv: ReadonlyArray<string>, output: Output): Promise<number> =>
  runGroup("dlq", dlqDescription, { list, get, retry, purge }, argv, output)
