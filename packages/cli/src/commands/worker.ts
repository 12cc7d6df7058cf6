import type { ClaimedJob } from "@awa/runtime/Engine"
import { type QueueConfig, Worker, type WorkerOptions } from "@awa/runtime/Worker"
import type { WorkerEvent } from "@awa/runtime/WorkerEvent"
import { type FlagSpec, flagHelp, parseCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { databaseUrlFlag } from "../internal/CommonFlags.js"
import { resolveDatabaseUrl, resolvePooler, withPool } from "../internal/Database.js"
import { engineFlags, engineLabel, engineSelection, followedEngineLabel } from "../internal/EngineFlags.js"
import { durationFlag, noExtraArguments, positiveIntFlag, queueValue } from "../internal/FlagValues.js"
import { loadTasksModule } from "../internal/TasksModule.js"
import type { Output } from "../Output.js"
import { UsageError } from "../UsageError.js"

const flags: Record<string, FlagSpec> = {
  tasks: { type: "string", description: "module exporting job handlers (required), e.g. ./dist/tasks.js" },
  queue: {
    type: "string",
    multiple: true,
    description: "queue to work, optionally NAME=CONCURRENCY (default: the handlers' queues)",
  },
  concurrency: { type: "string", description: "jobs running at once per queue (default 100)" },
  "shutdown-timeout": {
    type: "string",
    description: "on SIGINT/SIGTERM, how long running jobs may finish (default 10s)",
  },
  "poll-interval": {
    type: "string",
    description: "poll fallback when no NOTIFY arrives (default 1s, 250ms with --pooler transaction)",
  },
  "no-listen": { type: "boolean", description: "poll only, no LISTEN (e.g. behind transaction pooling)" },
  "no-maintenance": { type: "boolean", description: "do not take part in maintenance leader election" },
  "heartbeat-interval": {
    type: "string",
    description: "how often running jobs send heartbeats (default 5s)",
  },
  "heartbeat-stale-after": {
    type: "string",
    description:
      "as maintenance leader, rescue a running job whose heartbeat is older than this (default 1m; keep it well above every worker's --heartbeat-interval)",
  },
  "rescue-interval": {
    type: "string",
    description: "as maintenance leader, look for stale or overdue jobs this often (default 5s)",
  },
  "leader-lease": {
    type: "string",
    description: "maintenance leader's lease; a killed leader is replaced after it (default 15s)",
  },
  id: { type: "string", description: "this worker's id in events and awa.leaders (default host:pid:random)" },
  "stats-interval": { type: "string", description: "print a stats line this often (default 10s; 0 = never)" },
  json: { type: "boolean", description: "print lifecycle events as JSON lines instead of text" },
  "database-url": databaseUrlFlag,
  ...engineFlags,
  help: { type: "boolean", short: "h", description: "show this help" },
}

/** Help text of `awa worker`. */
export const workerHelp = `Usage: awa worker --tasks MODULE [flags]

Runs a worker for the job handlers exported by MODULE (handlers made with handle(definition, fn) from
@awa/runtime/JobHandler: named exports, the default export, or arrays of them). It claims jobs from its
queues, runs them, retries failures with backoff, and takes part in maintenance. It runs until SIGINT or
SIGTERM, then shuts down gracefully: it stops claiming, lets running jobs finish within
--shutdown-timeout, releases the rest back to their queues (firing their handlers' abort signals), and
exits 0 at once: a handler that ignores its signal is named on stderr (kind and job id) and does not hold
the exit. A second signal exits at once, without releasing.

Output: a line when it starts and stops, one per retried / failed / cancelled job, and a stats line every
--stats-interval; with --json, one JSON object per lifecycle event instead.

Flags:
${flagHelp(flags)}`

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`

const jobLabel = (job: ClaimedJob): string => `job ${job.id} ${job.kind} (queue ${job.queue})`

const jobFields = (job: ClaimedJob) => ({
  jobId: job.id,
  kind: job.kind,
  queue: job.queue,
  attempt: job.attempt,
  runLease: job.runLease,
})

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** A message as a clause of a longer line: without its closing full stop, so "…job.; next try" cannot happen. */
const clause = (text: string): string => text.replace(/[\s.;:,]+$/, "")

/** One JSON line per event (lifecycle events of one job carry its id, kind, queue and attempt). */
const eventJson = (event: WorkerEvent): Record<string, unknown> => {
  const at = new Date().toISOString()
  switch (event.type) {
    case "claimed":
      return { at, type: event.type, ...jobFields(event.job), waitMs: event.waitMs }
    case "completed":
      return { at, type: event.type, ...jobFields(event.job), durationMs: event.durationMs }
    case "retried":
      return {
        at,
        type: event.type,
        ...jobFields(event.job),
        durationMs: event.durationMs,
        delayMs: event.delayMs,
        error: event.error.message,
      }
    case "snoozed":
      return { at, type: event.type, ...jobFields(event.job), delayMs: event.delayMs }
    case "cancelled":
      return { at, type: event.type, ...jobFields(event.job), reason: event.reason }
    case "failed":
      return {
        at,
        type: event.type,
        ...jobFields(event.job),
        error: event.error.message,
        deadLettered: event.deadLettered,
      }
    case "stale":
      return { at, type: event.type, ...jobFields(event.job), operation: event.operation }
    case "released":
      return { at, type: event.type, jobIds: event.jobs.map((j) => j.id) }
    case "abandoned":
      return { at, type: event.type, jobs: event.jobs.map(jobFields) }
    case "leadership":
      return { at, type: event.type, leader: event.leader, holder: event.holder }
    case "maintenance":
      return {
        at,
        type: event.type,
        promoted: event.promoted,
        rescued: event.rescued,
        deleted: event.deleted,
      }
    case "error":
      return { at, type: event.type, context: event.context, error: errorText(event.error) }
  }
}

/** A text line for the events worth a line (completions and claims are counted, not printed). */
const eventLine = (event: WorkerEvent): { readonly text: string; readonly error?: true } | undefined => {
  switch (event.type) {
    case "retried":
      return {
        text: `retry   ${jobLabel(event.job)}: attempt ${event.job.attempt}/${event.job.maxAttempts} failed: ${clause(event.error.message)}; next try in ${seconds(event.delayMs)}`,
      }
    case "failed":
      return {
        text: `failed  ${jobLabel(event.job)} after attempt ${event.job.attempt}: ${clause(event.error.message)}${event.deadLettered ? " (moved to the DLQ)" : ""}`,
      }
    case "cancelled":
      return { text: `cancel  ${jobLabel(event.job)}: ${event.reason}` }
    case "stale":
      return {
        text: `stale   ${jobLabel(event.job)}: its ${event.operation} changed nothing (the attempt was rescued or cancelled meanwhile)`,
      }
    case "released":
      return { text: `released ${event.jobs.length} unfinished job(s) back to their queues` }
    case "abandoned":
      return {
        text: `${event.jobs.length} handler(s) ignored the shutdown signal and were still running: ${event.jobs.map(jobLabel).join("; ")}. Their jobs are back in their queues; exiting without waiting for them (make handlers honour ctx.signal).`,
        error: true,
      }
    case "leadership":
      return {
        text: event.leader
          ? "maintenance: this worker is now the leader"
          : "maintenance: no longer the leader",
      }
    case "error":
      return { text: `error (${event.context}): ${errorText(event.error)}`, error: true }
    default:
      return undefined
  }
}

const parseQueues = (values: unknown): Readonly<Record<string, QueueConfig>> | undefined => {
  if (values === undefined) return undefined
  const queues: Record<string, QueueConfig> = {}
  for (const value of values as ReadonlyArray<string>) {
    const [name, concurrency, ...rest] = value.split("=")
    if (rest.length > 0)
      throw new UsageError({ reason: `--queue takes NAME or NAME=CONCURRENCY, got "${value}".` })
    const queue = queueValue(name, "--queue") as string
    const n = positiveIntFlag(`queue ${queue}=`, concurrency, 100_000)
    queues[queue] = n === undefined ? {} : { concurrency: n }
  }
  return queues
}

/** Runs `awa worker`; resolves after a graceful shutdown on SIGINT/SIGTERM. */
export const runWorker = async (argv: ReadonlyArray<string>, output: Output): Promise<number> => {
  const parsed = parseCommandLine("worker", argv, flags)
  if (parsed instanceof UsageError) throw parsed
  const f = parsed.flags
  if (f.help) {
    output.out(workerHelp)
    return ExitCode.ok
  }
  noExtraArguments("worker", parsed.positionals)
  if (typeof f.tasks !== "string" || f.tasks.trim() === "") {
    throw new UsageError({
      reason: "awa worker needs --tasks MODULE: a module that exports job handlers (see awa worker --help).",
    })
  }
  const queues = parseQueues(f.queue)
  const concurrency = positiveIntFlag("concurrency", f.concurrency, 100_000)
  const shutdownMs = durationFlag("shutdown-timeout", f["shutdown-timeout"])
  const pollMs = durationFlag("poll-interval", f["poll-interval"], 10)
  const statsMs = durationFlag("stats-interval", f["stats-interval"]) ?? 10_000
  const heartbeatMs = durationFlag("heartbeat-interval", f["heartbeat-interval"], 1)
  const staleAfterMs = durationFlag("heartbeat-stale-after", f["heartbeat-stale-after"], 1)
  const rescueMs = durationFlag("rescue-interval", f["rescue-interval"], 10)
  if (f["no-maintenance"] === true && (staleAfterMs !== undefined || rescueMs !== undefined)) {
    throw new UsageError({
      reason:
        "--heartbeat-stale-after and --rescue-interval set maintenance timing, but --no-maintenance turns maintenance off: drop one or the other.",
    })
  }
  if (staleAfterMs !== undefined && staleAfterMs <= (heartbeatMs ?? 5000)) {
    throw new UsageError({
      reason: `--heartbeat-stale-after (${staleAfterMs}ms) must be longer than --heartbeat-interval (${heartbeatMs ?? 5000}ms), or running jobs would be rescued while healthy.`,
    })
  }
  const leaseMs = durationFlag("leader-lease", f["leader-lease"], 30)
  const pooler = resolvePooler(f)
  const json = f.json === true
  const selection = engineSelection(f)
  const handlers = await loadTasksModule(f.tasks)
  const url = resolveDatabaseUrl(f["database-url"])

  const print = (text: string) => output.out(text)
  const queueCount =
    queues === undefined
      ? new Set(handlers.map((h) => h.definition.defaults.queue)).size
      : Object.keys(queues).length
  return withPool(
    url,
    async (pool) => {
      const options: WorkerOptions = {
        pool,
        handlers,
        ...selection,
        ...(queues === undefined ? {} : { queues }),
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(shutdownMs === undefined ? {} : { shutdownTimeout: shutdownMs }),
        ...(pollMs === undefined ? {} : { pollInterval: pollMs }),
        ...(f["no-listen"] === true ? { listen: false } : {}),
        ...(heartbeatMs === undefined ? {} : { heartbeatInterval: heartbeatMs }),
        ...(f["no-maintenance"] === true
          ? { maintenance: false }
          : staleAfterMs === undefined && rescueMs === undefined && leaseMs === undefined
            ? {}
            : {
                maintenance: {
                  ...(staleAfterMs === undefined ? {} : { heartbeatStaleAfter: staleAfterMs }),
                  ...(rescueMs === undefined ? {} : { rescueInterval: rescueMs }),
                  ...(leaseMs === undefined ? {} : { leaseTtl: leaseMs }),
                },
              }),
        ...(pooler === undefined ? {} : { pooler }),
        ...(typeof f.id === "string" ? { id: f.id } : {}),
      }
      const worker = await Worker.start(options)
      worker.subscribe((event) => {
        if (json) {
          if (event.type === "error") output.err(JSON.stringify(eventJson(event)))
          else print(JSON.stringify(eventJson(event)))
          return
        }
        const line = eventLine(event)
        if (line === undefined) return
        if (line.error) output.err(line.text)
        else print(line.text)
      })
      // A second signal while shutting down exits at once.
      const force = () => {
        output.err(
          "awa worker: second signal, exiting without waiting for running jobs; they stay running until maintenance (another worker) rescues them once their heartbeats go stale.",
        )
        process.exit(ExitCode.interrupted)
      }
      // Installed before "started" is printed: whoever waits for that line may signal at once, and a signal
      // with no listener yet would end the process without a graceful stop.
      const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
        const onSignal = (received: NodeJS.Signals) => {
          process.off("SIGINT", onSignal)
          process.off("SIGTERM", onSignal)
          process.once("SIGINT", force)
          process.once("SIGTERM", force)
          resolve(received)
        }
        process.on("SIGINT", onSignal)
        process.on("SIGTERM", onSignal)
      })
      const kinds = handlers.map((h) => h.definition.kind).join(", ")
      // A worker with no engine named follows the database's storage state (and may just have activated
      // queue storage on a fresh database): say which engine that is, and what the start did.
      const activation = worker.freshActivation
      const engine =
        activation === undefined
          ? engineLabel(selection)
          : activation.state === "active"
            ? `queue_storage${activation.queueStorageSchema === "awa" ? "" : ` (schema ${activation.queueStorageSchema})`}`
            : activation.state === "mixed"
              ? "mixed"
              : "canonical"
      if (json) {
        print(
          JSON.stringify({
            at: new Date().toISOString(),
            type: "started",
            workerId: worker.id,
            queues: worker.queues,
            kinds: handlers.map((h) => h.definition.kind),
            engine,
            ...(activation === undefined ? {} : { freshActivation: activation.outcome }),
          }),
        )
      } else {
        print(
          `awa worker ${worker.id} started: queues ${worker.queues.join(", ")}; kinds ${kinds}; engine ${activation === undefined ? engine : followedEngineLabel(activation)}. SIGINT or SIGTERM stops it gracefully.`,
        )
      }

      const statsTimer =
        statsMs > 0
          ? setInterval(() => {
              worker
                .metrics()
                .then((m) => {
                  const inFlight = Object.values(m.inFlight).reduce((a, b) => a + b, 0)
                  const depth = Object.values(m.depth).reduce((a, b) => a + b, 0)
                  if (json) print(JSON.stringify({ at: new Date().toISOString(), type: "stats", ...m }))
                  else
                    print(
                      `stats   completed ${m.totals.completed} (${m.completedPerSecond.toFixed(1)}/s), retried ${m.totals.retried}, failed ${m.totals.failed}, cancelled ${m.totals.cancelled}, running ${inFlight}, available ${depth}${m.leader ? ", leader" : ""}`,
                    )
                })
                .catch((error: unknown) => output.err(`error (stats): ${errorText(error)}`))
            }, statsMs)
          : undefined

      const signal = await stopSignal
      if (statsTimer !== undefined) clearInterval(statsTimer)
      const running = await worker.metrics().then(
        (m) => Object.values(m.inFlight).reduce((a, b) => a + b, 0),
        () => 0,
      )
      if (!json) {
        print(
          `${signal}: stopping. Claiming stopped; waiting up to ${seconds(shutdownMs ?? 10_000)} for ${running} running job(s) (signal again to exit at once).`,
        )
      }
      try {
        await worker.stop()
      } finally {
        process.off("SIGINT", force)
        process.off("SIGTERM", force)
      }
      const m = await worker.metrics().catch(() => undefined)
      const totals = m?.totals
      if (json) print(JSON.stringify({ at: new Date().toISOString(), type: "stopped", signal, totals }))
      else
        print(
          `awa worker ${worker.id} stopped: claimed ${totals?.claimed ?? "?"}, completed ${totals?.completed ?? "?"}, retried ${totals?.retried ?? "?"}, failed ${totals?.failed ?? "?"}, cancelled ${totals?.cancelled ?? "?"}.`,
        )
      return ExitCode.ok
    },
    { max: Math.max(4, queueCount + 4), applicationName: "awa-worker", pooler },
  )
}
