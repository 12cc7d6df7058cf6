// How jobs, DLQ entries and queue stats look on a terminal (tables and detail views) and as JSON.
import { type JobState, jobStates } from "@awa/model/JobState"
import type { DeadLetter, Job, JobErrorRecord, QueueSettings, QueueStats } from "@awa/runtime/Engine"
import { formatTable } from "../Output.js"

/** JSON for `--json` output: dates as ISO strings, two-space indent. */
export const toJson = (value: unknown): string => JSON.stringify(value, null, 2)

const time = (date: Date | null): string => (date === null ? "-" : date.toISOString())

const oneLine = (text: string, max: number): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

const lastError = (errors: ReadonlyArray<JobErrorRecord>): string => {
  const last = errors[errors.length - 1]
  return last === undefined ? "" : oneLine(last.message, 60)
}

/** Jobs as a table: id, state, kind, queue, attempt, priority, run at, last error. */
export const jobTable = (jobs: ReadonlyArray<Job>): string =>
  formatTable(
    ["id", "state", "kind", "queue", "attempt", "prio", "run_at", "last error"],
    jobs.map((j) => [
      j.id,
      j.state,
      j.kind,
      j.queue,
      `${j.attempt}/${j.maxAttempts}`,
      String(j.priority),
      time(j.runAt),
      lastError(j.errors),
    ]),
  )

const errorLines = (errors: ReadonlyArray<JobErrorRecord>): string =>
  errors.length === 0
    ? "Errors: none"
    : `Errors (${errors.length}, oldest first):\n${errors
        .map(
          (e) =>
            `  attempt ${e.attempt} at ${e.at} [${e.kind}]${e.name === undefined ? "" : ` ${e.name}:`} ${oneLine(e.message, 200)}`,
        )
        .join("\n")}`

const fields = (rows: ReadonlyArray<readonly [string, string]>): string =>
  rows.map(([k, v]) => `  ${k.padEnd(14)}${v}`).join("\n")

/** One job in detail, errors included. */
export const jobDetail = (job: Job): string =>
  `Job ${job.id}
${fields([
  ["kind", job.kind],
  ["queue", job.queue],
  ["state", job.state],
  ["priority", String(job.priority)],
  ["attempt", `${job.attempt} of ${job.maxAttempts} (run lease ${job.runLease})`],
  ["run at", time(job.runAt)],
  ["created at", time(job.createdAt)],
  ["attempted at", time(job.attemptedAt)],
  ["heartbeat at", time(job.heartbeatAt)],
  ["deadline at", time(job.deadlineAt)],
  ["finalized at", time(job.finalizedAt)],
  ["timeout", job.timeoutMs === null ? "worker default" : `${job.timeoutMs} ms`],
  ["tags", job.tags.length === 0 ? "-" : job.tags.join(", ")],
  [
    "unique key",
    job.uniqueKey === null ? "-" : `${job.uniqueKey} (held while ${(job.uniqueStates ?? []).join(", ")})`,
  ],
  ["args", oneLine(JSON.stringify(job.args), 300)],
  ["metadata", oneLine(JSON.stringify(job.metadata), 300)],
])}
${errorLines(job.errors)}`

/** DLQ entries as a table. */
export const deadLetterTable = (entries: ReadonlyArray<DeadLetter>): string =>
  formatTable(
    ["id", "kind", "queue", "attempts", "failed_at", "reason"],
    entries.map((e) => [
      e.id,
      e.kind,
      e.queue,
      `${e.attempt}/${e.maxAttempts}`,
      time(e.failedAt),
      oneLine(e.reason, 60),
    ]),
  )

/** One DLQ entry in detail. */
export const deadLetterDetail = (entry: DeadLetter): string =>
  `Dead-lettered job ${entry.id}
${fields([
  ["kind", entry.kind],
  ["queue", entry.queue],
  ["priority", String(entry.priority)],
  ["attempts", `${entry.attempt} of ${entry.maxAttempts}`],
  ["created at", time(entry.createdAt)],
  ["failed at", time(entry.failedAt)],
  ["reason", oneLine(entry.reason, 300)],
  ["tags", entry.tags.length === 0 ? "-" : entry.tags.join(", ")],
  ["args", oneLine(JSON.stringify(entry.args), 300)],
  ["metadata", oneLine(JSON.stringify(entry.metadata), 300)],
])}
${errorLines(entry.errors)}`

const shortState: Record<JobState, string> = {
  scheduled: "scheduled",
  available: "available",
  running: "running",
  completed: "completed",
  retryable: "retryable",
  failed: "failed",
  cancelled: "cancelled",
  waiting_external: "waiting",
}

/** Queue stats as a table (one row per queue and a total row when there are several). */
export const queueStatsTable = (stats: ReadonlyArray<QueueStats>): string => {
  const rows = stats.map((s) => [
    s.queue,
    ...jobStates.map((state) => String(s.counts[state])),
    String(s.deadLettered),
    s.paused ? "yes" : "no",
    s.dlqEnabled ? "on" : "off",
  ])
  if (stats.length > 1) {
    rows.push([
      "(total)",
      ...jobStates.map((state) => String(stats.reduce((n, s) => n + s.counts[state], 0))),
      String(stats.reduce((n, s) => n + s.deadLettered, 0)),
      "",
      "",
    ])
  }
  return formatTable(["queue", ...jobStates.map((s) => shortState[s]), "dlq", "paused", "dlq_on"], rows)
}

/** One line describing a queue's settings. */
export const queueSettingsLine = (settings: QueueSettings): string =>
  `Queue ${settings.queue}: ${settings.paused ? `paused since ${time(settings.pausedAt)}` : "running (not paused)"}, dead-letter queue ${settings.dlqEnabled ? "enabled" : "disabled"}.`
