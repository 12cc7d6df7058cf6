// Named statements on awa.dlq (dead-letter queue reads and repairs).
import { statement } from "../../PgExecutor.js"

const dlqColumns = `d.id, d.kind, d.queue, d.args, d.priority, d.attempt, d.max_attempts, d.run_lease,
  d.attempt_timeout_ms, d.errors, d.tags, d.metadata, encode(d.unique_key, 'hex') AS unique_key, d.reason,
  d.created_at, d.failed_at`

/** Lists DLQ entries after id cursor $3, filtered by queue $1 and kind $2 (NULL for any), at most $4. */
export const listDlq = statement(
  "dlq_list",
  `SELECT ${dlqColumns} FROM awa.dlq d
   WHERE ($1::text IS NULL OR d.queue = $1) AND ($2::text IS NULL OR d.kind = $2)
     AND ($3::bigint IS NULL OR d.id > $3)
   ORDER BY d.id
   LIMIT $4`,
)

/** Reads one DLQ entry ($1 id). */
export const getDlq = statement("dlq_get", `SELECT ${dlqColumns} FROM awa.dlq d WHERE d.id = $1::bigint`)

/** DLQ entries per queue. */
export const countDlqByQueue = statement(
  "dlq_count_by_queue",
  `SELECT d.queue, count(*)::bigint AS count FROM awa.dlq d GROUP BY d.queue`,
)

/**
 * Moves DLQ entries back into awa.jobs as available with a fresh attempt count, keeping id, run_lease and
 * error history: entry $1 when given, else every entry matching queue $2 and kind $3 (NULL for any; the
 * caller refuses a bulk retry without a filter). Returns the ids, waking workers.
 */
export const retryDlq = statement(
  "dlq_retry",
  `WITH moved AS (
     DELETE FROM awa.dlq d
     WHERE ($1::bigint IS NOT NULL AND d.id = $1::bigint)
        OR ($1::bigint IS NULL AND ($2::text IS NULL OR d.queue = $2) AND ($3::text IS NULL OR d.kind = $3))
     RETURNING d.*
   ), back AS (
     INSERT INTO awa.jobs (id, kind, queue, args, state, priority, attempt, max_attempts, run_lease, run_at,
       attempt_timeout_ms, errors, tags, metadata, unique_key, unique_states, created_at)
     OVERRIDING SYSTEM VALUE
     SELECT m.id, m.kind, m.queue, m.args, 'available', m.priority, 0, m.max_attempts, m.run_lease, now(),
       m.attempt_timeout_ms, m.errors, m.tags, m.metadata, m.unique_key, m.unique_states, m.created_at
     FROM moved m
     RETURNING id, queue
   ), woken AS (
     SELECT pg_notify('awa_jobs_available', b.queue) FROM (SELECT DISTINCT queue FROM back) b
   )
   SELECT back.id, (SELECT count(*) FROM woken) AS woken FROM back`,
)

/** Deletes DLQ entries: entry $1 when given, else those matching queue $2 and kind $3 (NULL for any). */
export const purgeDlq = statement(
  "dlq_purge",
  `WITH gone AS (
     DELETE FROM awa.dlq d
     WHERE ($1::bigint IS NOT NULL AND d.id = $1::bigint)
        OR ($1::bigint IS NULL AND ($2::text IS NULL OR d.queue = $2) AND ($3::text IS NULL OR d.kind = $3))
     RETURNING 1
   )
   SELECT count(*)::integer AS purged FROM gone`,
)

/** Deletes every DLQ entry of queue $1; returns the count. */
export const deleteQueueDlq = statement(
  "dlq_delete_queue",
  `WITH gone AS (DELETE FROM awa.dlq d WHERE d.queue = $1 RETURNING 1)
   SELECT count(*)::integer AS deleted FROM gone`,
)
