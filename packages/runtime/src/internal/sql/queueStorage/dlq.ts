// Named statements on a queue-storage schema's dead-letter queue (dlq_entries).
import type { SchemaSql } from "./schemaStatement.js"

const dlqColumns = `d.id, d.kind, d.queue, d.args, d.priority, d.attempt, d.max_attempts, d.run_lease,
  d.attempt_timeout_ms, d.errors, d.tags, d.metadata, encode(d.unique_key, 'hex') AS unique_key, d.reason,
  d.created_at, d.failed_at`

/** The statements of one schema's DLQ. */
export const dlqStatements = ({ s, statement }: SchemaSql) => ({
  /** Lists DLQ entries after id cursor $3, filtered by queue $1 and kind $2 (NULL for any), at most $4. */
  list: statement(
    "dlq_list",
    `SELECT ${dlqColumns} FROM ${s}.dlq_entries d
     WHERE ($1::text IS NULL OR d.queue = $1) AND ($2::text IS NULL OR d.kind = $2)
       AND ($3::bigint IS NULL OR d.id > $3)
     ORDER BY d.id LIMIT $4`,
  ),
  /** Reads one DLQ entry ($1 id). */
  get: statement("dlq_get", `SELECT ${dlqColumns} FROM ${s}.dlq_entries d WHERE d.id = $1::bigint`),
  /** DLQ entries per queue. */
  countByQueue: statement(
    "dlq_count",
    `SELECT d.queue, count(*)::bigint AS count FROM ${s}.dlq_entries d GROUP BY d.queue`,
  ),
  /** Moves DLQ entries back to the queue: entry $1, else those matching queue $2 and kind $3. Returns the ids. */
  retry: statement("dlq_retry", `SELECT r.id FROM ${s}.retry_dlq($1::bigint, $2::text, $3::text) r`),
  /** Deletes DLQ entries: entry $1, else those matching queue $2 and kind $3 (NULL for any). */
  purge: statement(
    "dlq_purge",
    `WITH gone AS (
       DELETE FROM ${s}.dlq_entries d
       WHERE ($1::bigint IS NOT NULL AND d.id = $1::bigint)
          OR ($1::bigint IS NULL AND ($2::text IS NULL OR d.queue = $2) AND ($3::text IS NULL OR d.kind = $3))
       RETURNING 1
     )
     SELECT count(*)::integer AS purged FROM gone`,
  ),
})
