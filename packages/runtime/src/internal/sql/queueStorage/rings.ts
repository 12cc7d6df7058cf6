// Named statements on a queue-storage schema's rings (rotation ledgers and slot pruning).
import type { SchemaSql } from "./schemaStatement.js"

/** The statements of one schema's ring maintenance. */
export const ringStatements = ({ s, statement }: SchemaSql) => ({
  /**
   * Rotates and prunes both rings once: $1 queue-ring and $2 claim-ring rotation age in ms (0 forces), $3
   * failed-job retention in ms, $4 prune lock timeout in ms. Returns a JSON report.
   */
  maintain: statement(
    "maintain_rings",
    `SELECT ${s}.maintain_rings($1::bigint, $2::bigint, $3::bigint, $4::integer) AS report`,
    { prepared: false },
  ),
  /**
   * Retires the queue-ring slots that no longer hold a ready row (other than the current one), so claims stop
   * reading them; a slot a writer holds longer than $1 ms stays live until a later run. Returns the slots.
   */
  retireSlots: statement("retire_queue_slots", `SELECT ${s}.retire_queue_slots($1::integer) AS retired`, {
    prepared: false,
  }),
  /**
   * Empties the COPY inbox (rows every COPY already enqueued) unless a COPY holds it longer than $1 ms;
   * returns whether it did.
   */
  pruneCopyInbox: statement("prune_copy_inbox", `SELECT ${s}.prune_copy_inbox($1::integer) AS pruned`, {
    prepared: false,
  }),
  /** Purges up to $2 failed or cancelled jobs finalized more than $1 ms ago; returns how many. */
  purgeFinished: statement("purge_finished", `SELECT ${s}.purge_finished($1::bigint, $2::integer) AS purged`),
})
