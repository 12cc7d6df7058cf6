// Named statements on awa.queues (pause, resume, DLQ setting) and queue-level reads.
import { statement } from "../../PgExecutor.js"

/** Pauses ($2 true) or resumes ($2 false) queue $1, creating its settings row when absent. */
export const setQueuePaused = statement(
  "queues_set_paused",
  `INSERT INTO awa.queues AS q (name, paused, paused_at) VALUES ($1, $2, CASE WHEN $2 THEN now() END)
   ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, paused_at = excluded.paused_at, updated_at = now()
   RETURNING q.name, q.paused, q.paused_at, q.dlq_enabled`,
)

/** Enables ($2 true) or disables the dead-letter queue of queue $1. */
export const setQueueDlq = statement(
  "queues_set_dlq",
  `INSERT INTO awa.queues AS q (name, dlq_enabled) VALUES ($1, $2)
   ON CONFLICT (name) DO UPDATE SET dlq_enabled = excluded.dlq_enabled, updated_at = now()
   RETURNING q.name, q.paused, q.paused_at, q.dlq_enabled`,
)

/** Lists every queue's settings row. */
export const listQueueSettings = statement(
  "queues_list",
  `SELECT q.name, q.paused, q.paused_at, q.dlq_enabled FROM awa.queues q ORDER BY q.name`,
)
