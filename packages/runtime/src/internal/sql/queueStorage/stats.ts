// The queue-storage counts behind queueStats, as one statement: every part reads the same snapshot. Run as
// separate reads (in parallel on a pool, or one after another), a job that moves between them (claimed,
// completed, promoted) would be counted twice or not at all, and the totals would drift while workers run.
import type { SqlStatement } from "../../../PgExecutor.js"
import type { SchemaSql } from "./schemaStatement.js"

/** The state under which the combined statement returns the dead-letter counts (not a job state). */
export const deadLetteredPart = "dead_lettered"

/** The per-queue count statements the combined one is made of (each returns queue and count, some state). */
export interface CountParts {
  /** Pending jobs per queue (queue, count). */
  readonly available: SqlStatement
  /** Running jobs per queue (queue, count). */
  readonly running: SqlStatement
  /** Scheduled and retryable jobs per queue (queue, state, count). */
  readonly deferred: SqlStatement
  /** Terminal jobs per queue from the live counters (queue, state, count). */
  readonly terminal: SqlStatement
  /** Dead letters per queue (queue, count). */
  readonly dead: SqlStatement
}

/** The statements of one schema's queue statistics, built from its count statements. */
export const statsStatements = ({ statement }: SchemaSql, parts: CountParts) => ({
  /** Every count of every queue in one snapshot: rows (state, queue, count), dead letters as {@link deadLetteredPart}. */
  counts: statement(
    "queue_counts",
    `SELECT 'available' AS state, a.queue, a.count FROM (${parts.available.text}) a
     UNION ALL SELECT 'running', r.queue, r.count FROM (${parts.running.text}) r
     UNION ALL SELECT d.state, d.queue, d.count FROM (${parts.deferred.text}) d
     UNION ALL SELECT t.state, t.queue, t.count FROM (${parts.terminal.text}) t
     UNION ALL SELECT '${deadLetteredPart}', q.queue, q.count FROM (${parts.dead.text}) q`,
  ),
})
