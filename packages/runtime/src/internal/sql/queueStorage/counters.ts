// Named statements on a queue-storage schema's live terminal counters and rollups.
import type { SchemaSql } from "./schemaStatement.js"

/** The statements of one schema's terminal counters. */
export const counterStatements = ({ s, statement }: SchemaSql) => ({
  /** Terminal jobs stored per queue and state, from the live counters (never from terminal history). */
  liveByQueue: statement(
    "terminal_live_by_queue",
    `SELECT c.queue, c.state, sum(c.count)::bigint AS count FROM ${s}.queue_terminal_live_counts c
     GROUP BY c.queue, c.state`,
  ),
  /** Recomputes the live counters from ground truth; returns the counter rows written. */
  rebuild: statement("terminal_rebuild", `SELECT ${s}.rebuild_terminal_counters() AS rows`, {
    prepared: false,
  }),
})
