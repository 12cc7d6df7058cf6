import type { Admin } from "@awa/runtime/Admin"
import type { Job } from "@awa/runtime/Engine"
import type { PgPool } from "@awa/runtime/PgExecutor"
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
  orderFlag,
  positiveIntFlag,
  queueValue,
  statesFlag,
} from "../internal/FlagValues.js"
import { jobDetail, jobTable, toJson } from "../internal/JobView.js"
import { inJobTable } from "../internal/MisplacedJob.js"
import { runGroup, type Subcommand } from "../internal/Subcommands.js"
import type { Output } from "../Output.js"
import { UsageError } from "../UsageError.js"

const oneJob =
  (
    name: "get" | "retry" | "cancel",
    act: (admin: Admin, pool: PgPool, id: string) => Promise<Job>,
    done: (id: string) => string,
  ) =>
  async (parsed: ParsedCommandLine, output: Output): Promise<number> => {
    const [rawId, ...extra] = parsed.positionals
    const id = jobIdArgument(`job ${name}`, rawId)
    noExtraArguments(`job ${name}`, extra)
    const admin = adminFor(parsed.flags)
    const job = await withDatabase(parsed.flags, (pool) =>
      inJobTable(admin, pool, id, () => act(admin, pool, id)),
    )
    if (parsed.flags.json) output.out(toJson(job))
    else output.out(name === "get" ? jobDetail(job) : `${done(id)}\n\n${jobDetail(job)}`)
    return ExitCode.ok
  }

/** `--reason` of `job cancel`: recorded on the job, so an empty one (which says nothing) is refused. */
const reasonFlag = (value: unknown): string => {
  if (value === undefined) return "cancelled by an operator"
  const text = String(value)
  if (text.trim() === "") {
    throw new UsageError({
      reason:
        '--reason must not be empty: it is recorded on the job. Leave it out for the default ("cancelled by an operator").',
    })
  }
  return text
}

const list: Subcommand = {
  usage: "[--state S] [--queue Q] [--kind K] [--tag T] [--limit N] [--cursor C] [flags]",
  summary: "list jobs, newest first, filtered by state / queue / kind / tag, a page at a time",
  description: `Lists jobs, newest first (--order asc for oldest first), a page at a time (--limit, default 50).
When more rows exist the output ends with the cursor of the next page: pass it as --cursor.
--state takes one or more states (repeat it or separate with commas): scheduled, available, running,
completed, retryable, failed, cancelled, waiting_external.`,
  flags: {
    state: { type: "string", multiple: true, description: "only these states (repeatable, comma-separated)" },
    queue: { type: "string", description: "only this queue" },
    kind: { type: "string", description: "only this job kind" },
    tag: { type: "string", description: "only jobs carrying this tag" },
    ...pageFlags,
    order: { type: "string", description: "desc (newest first, default) or asc" },
    "database-url": databaseUrlFlag,
    ...engineFlags,
  },
  run: async (parsed, output) => {
    const f = parsed.flags
    noExtraArguments("job list", parsed.positionals)
    const states = statesFlag(f.state)
    const queue = queueValue(f.queue)
    const kind = kindFlag(f.kind)
    const tag = typeof f.tag === "string" ? f.tag : undefined
    const limit = positiveIntFlag("limit", f.limit, 10_000) ?? 50
    const cursor = cursorFlag(f.cursor)
    const order = orderFlag(f.order) ?? "desc"
    const admin = adminFor(f)
    const page = await withDatabase(f, (pool) =>
      admin.listJobs(
        pool,
        {
          ...(states === undefined ? {} : { states }),
          ...(queue === undefined ? {} : { queue }),
          ...(kind === undefined ? {} : { kind }),
          ...(tag === undefined ? {} : { tag }),
        },
        { limit, order, ...(cursor === undefined ? {} : { cursor }) },
      ),
    )
    if (f.json) {
      output.out(toJson(page))
      return ExitCode.ok
    }
    output.out(page.items.length === 0 ? "No jobs match." : jobTable(page.items))
    if (page.nextCursor !== null) {
      output.out(`\nMore jobs match: add --cursor ${page.nextCursor} for the next page.`)
    }
    return ExitCode.ok
  },
}

const get: Subcommand = {
  usage: "ID [flags]",
  summary: "show one job: state, attempts, times, args and every recorded error",
  description:
    "Shows one job in full, including every error recorded on it. Exits 7 when the job does not exist.",
  flags: { json: jsonFlag, "database-url": databaseUrlFlag, ...engineFlags },
  run: oneJob(
    "get",
    (admin, pool, id) => admin.getJob(pool, id),
    () => "",
  ),
}

const retry: Subcommand = {
  usage: "ID [flags]",
  summary: "run a scheduled, retryable, completed, failed or cancelled job again now, with fresh attempts",
  description: `Makes a job available now with a fresh attempt count. Applies to jobs that are scheduled, retryable,
completed, failed or cancelled; a running or available job is refused (exit 8), as is one whose unique key
another job holds now. Exits 7 when the job does not exist. (Dead-lettered jobs: awa dlq retry.)`,
  flags: { json: jsonFlag, "database-url": databaseUrlFlag, ...engineFlags },
  run: oneJob(
    "retry",
    (admin, pool, id) => admin.retryJob(pool, id),
    (id) => `Job ${id} is available again with a fresh attempt count.`,
  ),
}

const cancel: Subcommand = {
  usage: "ID [--reason TEXT] [flags]",
  summary: "cancel a job that has not finished; a running handler's signal fires",
  description: `Cancels a job that is not finished yet (scheduled, available, running, retryable or waiting). A
running job's worker is told through NOTIFY and its handler's AbortSignal fires. A completed, failed or
cancelled job is refused (exit 8). Exits 7 when the job does not exist.`,
  flags: {
    reason: { type: "string", description: 'recorded on the job (default "cancelled by an operator")' },
    json: jsonFlag,
    "database-url": databaseUrlFlag,
    ...engineFlags,
  },
  run: (parsed, output) => {
    const reason = reasonFlag(parsed.flags.reason)
    return oneJob(
      "cancel",
      (admin, pool, id) => admin.cancelJob(pool, id, reason),
      (id) => `Job ${id} is cancelled.`,
    )(parsed, output)
  },
}

/** Help text of `awa job`. */
export const jobDescription =
  "Inspect and repair jobs: list with filters and pagination, show, retry, cancel."

/** Runs `awa job <list|get|retry|cancel>`; returns the exit code. */
export const runJob = (argv: ReadonlyArray<string>, output: Output): Promise<number> =>
  runGroup("job", jobDescription, { list, get, retry, cancel }, argv, output)
