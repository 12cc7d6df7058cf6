// Named statements of the mixed storage state's continuation: canonical jobs that wait again move into a
// queue-storage schema under the same id (migrations/queue-storage/0006_adopt_canonical.sql).
import type { SchemaSql } from "./schemaStatement.js"

/** The statements that move canonical jobs into one queue-storage schema. */
export const adoptionStatements = ({ s, statement }: SchemaSql) => ({
  /**
   * Continues running canonical attempts here ($1 ids, $2 leases, $3 delay ms, $4 error JSON or NULL); $5 true
   * retries (the attempt counts, retryable), false snoozes (the attempt is given back, scheduled). Returns the
   * ids whose canonical attempt was still open.
   */
  attempts: statement(
    "adopt_canonical_attempts",
    `SELECT a.id FROM ${s}.adopt_canonical_attempts($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::boolean) a`,
    { prepared: false },
  ),

  /** Moves up to $1 waiting (scheduled, retryable) canonical jobs here; returns how many. */
  waiting: statement("adopt_canonical_waiting", `SELECT ${s}.adopt_canonical_waiting($1::integer) AS moved`),

  /** Retries canonical job $1 here now with a fresh attempt count; false when it is not in a retryable state. */
  retryJob: statement("adopt_canonical_retry", `SELECT ${s}.adopt_canonical_retry($1::bigint) AS done`),

  /** Retries canonical DLQ entries here: entry $1, else those of queue $2 and kind $3 (NULL for any). */
  retryDlq: statement(
    "adopt_canonical_dlq",
    `SELECT d.id FROM ${s}.adopt_canonical_dlq($1::bigint, $2::text, $3::text) d ORDER BY d.id`,
  ),

  /** Copies canonical queue settings (pause, DLQ) of queues this schema has none for; returns how many. */
  queueSettings: statement(
    "adopt_canonical_queue_settings",
    `SELECT ${s}.adopt_canonical_queue_settings() AS copied`,
  ),

  /**
   * Takes the transaction-scoped locks of unique keys $1 (hex) that serialize giving a key a holder in either
   * engine; the caller then checks the other engine in a fresh statement.
   */
  lockUniqueKeys: statement(
    "lock_unique_keys",
    `SELECT ${s}.lock_unique_keys(ARRAY(SELECT decode(k, 'hex') FROM unnest($1::text[]) AS k)) AS locked`,
  ),
})
