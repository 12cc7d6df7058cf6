// Named statements on a queue-storage schema's queue settings (pause, DLQ).
import type { SchemaSql } from "./schemaStatement.js"

/** The statements of one schema's queue settings. */
export const queueStatements = ({ s, statement }: SchemaSql) => ({
  /** Pauses ($2 true) or resumes queue $1, creating its settings row when absent. */
  setPaused: statement(
    "queues_set_paused",
    `INSERT INTO ${s}.queue_settings AS q (name, paused, paused_at) VALUES ($1, $2, CASE WHEN $2 THEN now() END)
     ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, paused_at = excluded.paused_at, updated_at = now()
     RETURNING q.name, q.paused, q.paused_at, q.dlq_enabled`,
  ),
  /** Enables ($2 true) or disables the dead-letter queue of queue $1. */
  setDlq: statement(
    "queues_set_dlq",
    `INSERT INTO ${s}.queue_settings AS q (name, dlq_enabled) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET dlq_enabled = excluded.dlq_enabled, updated_at = now()
     RETURNING q.name, q.paused, q.paused_at, q.dlq_enabled`,
  ),
  /** Lists every queue's settings row. */
  list: statement(
    "queues_list",
    `SELECT q.name, q.paused, q.paused_at, q.dlq_enabled FROM ${s}.queue_settings q ORDER BY q.name`,
  ),
})
