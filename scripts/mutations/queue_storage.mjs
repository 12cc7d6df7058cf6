// Deliberate mistakes in the queue-storage engine for `pnpm mutation --engine queue_storage`, in the same shape
// as canonical.mjs: { id, mistake, file, search, replace, judges? }, each `search` occurring exactly once in its
// file. The first ones reach the engine's TypeScript and statements (packages/runtime/src); the rest are in the
// SQL functions of the queue-storage migration set (migrations/queue-storage), where most of this engine's logic
// lives. Mistakes in rotation, prune and the counters are judged by the ring and counter tests as well as the
// contract (`judges`), since the contract cannot see a truncated slot or a count off by one. The claim, enqueue
// and complete functions are mostly left alone (they are the hot path, rewritten for speed); where a mistake is
// near them its search text is a small fragment. The six after those reach the hot path's own safety: the
// busy-lane mark that keeps a claim's fast path behind producers in flight, the lease check of the attempt
// lookup (one probe, whether the slot came with the attempt or was found), the live-slot protocol that lets a
// claim skip retired ring slots (a stale writer lists its slot, retirement waits for writers, claims read the
// list), and the look-ahead that lets a claim take a backlog in lane order. The two after them reach the read
// model's receipt lookup, judged by its own test too, and the last one the hot path's plans, judged by the plans
// test.
const engine = "packages/runtime/src/QueueStorageEngine.ts"
const jobs = "packages/runtime/src/internal/sql/queueStorage/jobs.ts"
const dlq = "packages/runtime/src/internal/sql/queueStorage/dlq.ts"
const queues = "packages/runtime/src/internal/sql/queueStorage/queues.ts"
const functions = "migrations/queue-storage/0003_queue_storage_functions.sql"
const maintenance = "migrations/queue-storage/0004_queue_storage_rings_maintenance.sql"
const hotPath = "migrations/queue-storage/0007_hot_path.sql"
const rings = "runtime:test/QueueStorageRings.integration.test.ts"
const counters = "runtime:test/QueueStorageCounters.integration.test.ts"
const exits = "runtime:test/QueueStorageExits.integration.test.ts"
const concurrency = "runtime:test/QueueStorageConcurrency.integration.test.ts"
const readModel = "runtime:test/QueueStorageReadModel.integration.test.ts"
const plans = "runtime:test/QueueStoragePlans.integration.test.ts"

export default [
  {
    id: "complete-stale-lease-accepted",
    mistake: "a completion with a stale run_lease is accepted (any closure counts as applied)",
    file: engine,
    search: 'if (row.outcome === "completed") done.add',
    replace: "if (row.outcome !== undefined) done.add",
  },
  {
    id: "heartbeat-stale-lease-accepted",
    mistake: "a heartbeat with a stale run_lease is accepted",
    file: engine,
    search: 'attemptWrite(refs, (ids, leases) => db.query("heartbeat jobs", jobs.heartbeat, [ids, leases])),',
    replace:
      'attemptWrite(refs, async (ids, leases) => { await db.query("heartbeat jobs", jobs.heartbeat, [ids, leases]); return ids.map((id) => ({ id })) }),',
  },
  {
    id: "insert-many-misaligned",
    mistake: "insertMany results misaligned with the input",
    file: engine,
    search: "const p = pending[toNumber(r.ord) - 1]!",
    replace: "const p = pending[toNumber(r.ord) % pending.length]!",
  },
  {
    id: "stats-running-as-available",
    mistake: "queue stats count running jobs as available",
    file: engine,
    search: 'for (const row of running) add(row.queue as string, "running", toNumber(row.count))',
    replace: 'for (const row of running) add(row.queue as string, "available", toNumber(row.count))',
  },
  {
    id: "list-asc-repeats-cursor",
    mistake: "ascending pagination repeats the cursor row",
    file: jobs,
    search: "($5::bigint IS NULL OR j.id > $5)",
    replace: "($5::bigint IS NULL OR j.id >= $5)",
  },
  {
    id: "list-desc-repeats-cursor",
    mistake: "descending pagination repeats the cursor row",
    file: jobs,
    search: "($5::bigint IS NULL OR j.id < $5)",
    replace: "($5::bigint IS NULL OR j.id <= $5)",
  },
  {
    id: "make-due-ignores-queue",
    mistake: "makeDue ignores its queue filter",
    file: jobs,
    search: "make_due($1::bigint[], $2::text, $3::text, $4::bigint)",
    replace: "make_due($1::bigint[], NULL::text, $3::text, $4::bigint)",
  },
  {
    id: "claim-ignores-kinds",
    mistake: "claim ignores its kinds filter",
    file: jobs,
    search: "claim($1::text, $2::integer, $3::integer, $4::text[])",
    replace: "claim($1::text, $2::integer, $3::integer, NULL::text[])",
  },
  {
    id: "dlq-list-repeats-cursor",
    mistake: "DLQ pagination repeats the cursor row",
    file: dlq,
    search: "($3::bigint IS NULL OR d.id > $3)",
    replace: "($3::bigint IS NULL OR d.id >= $3)",
  },
  {
    id: "list-queues-unsorted",
    mistake: "listQueues is not sorted by name",
    file: queues,
    search: "ORDER BY q.name",
    replace: "ORDER BY q.name DESC",
  },
  {
    id: "prune-ignores-pending",
    mistake: "queue-ring prune truncates a slot that still holds unclaimed jobs",
    file: hotPath,
    search: "WHERE r.ready_slot = p_slot AND t.id IS NULL AND r.lane_seq > k.upto)",
    replace: "WHERE false)",
    judges: [rings],
  },
  {
    id: "prune-ignores-open-attempts",
    mistake: "queue-ring prune truncates a slot under open attempts (neither closures nor receipts checked)",
    file: hotPath,
    search: `WHERE r.ready_slot = p_slot AND (t.claimed OR (t.id IS NULL AND r.lane_seq <= k.upto))
        AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                        WHERE c.ready_slot = r.ready_slot AND c.id = r.id AND c.run_lease = r.run_lease + 1))
      THEN 'an open attempt'
    WHEN EXISTS (SELECT 1 FROM {{schema}}.claim_batches cb WHERE p_slot = ANY (cb.ready_slots))`,
    replace: `WHERE false)
      THEN 'an open attempt'
    WHEN false`,
    judges: [rings],
  },
  {
    id: "claim-prune-ignores-open-receipts",
    mistake: "claim-ring prune truncates receipts of attempts that have no closure",
    file: hotPath,
    search: "    WHERE cb.claim_slot = p_slot\n      AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures c",
    replace: "    WHERE false\n      AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures c",
    judges: [rings],
  },
  {
    id: "prune-drops-failed-in-retention",
    mistake:
      "prune does not carry failed and cancelled jobs inside retention forward (they leave with the slot)",
    file: hotPath,
    search: "WHERE j.ready_slot = v_slot AND j.state IN ('failed', 'cancelled')",
    replace: "WHERE false AND j.ready_slot = v_slot AND j.state IN ('failed', 'cancelled')",
    judges: [rings],
  },
  {
    id: "prune-skips-rollup-fold",
    mistake: "prune drops a slot's counters without folding them into the rollups",
    file: hotPath,
    search: "WHERE ready_slot = v_slot GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    replace: "WHERE false GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    judges: [rings, counters],
  },
  {
    id: "prune-skips-gate-recheck",
    mistake:
      "prune checks a queue slot's gates only before it takes the slot's lock, so a row written meanwhile is truncated",
    file: hotPath,
    search:
      "      IF (SELECT count(*) FROM {{schema}}.ready_entries r WHERE r.ready_slot = v_slot) <> v_q_rows[i]",
    replace:
      "      IF false AND (SELECT count(*) FROM {{schema}}.ready_entries r WHERE r.ready_slot = v_slot) <> v_q_rows[i]",
    judges: [rings],
  },
  {
    id: "rotation-into-occupied-slot",
    mistake: "rotation advances the queue ring into a slot that has not been pruned",
    file: hotPath,
    search: "AND {{schema}}.queue_slot_empty(((v_cur + 1) % v_n)::smallint)",
    replace: "AND true",
    judges: [rings],
  },
  {
    id: "retention-purge-keeps-count",
    mistake: "retention's purge of old failed/cancelled jobs leaves their live counters",
    file: maintenance,
    search: "array_agg(d.state), array_agg(-1::bigint))",
    replace: "array_agg(d.state), array_agg(0::bigint))",
    judges: [exits, counters],
  },
  {
    id: "retry-from-terminal-keeps-count",
    mistake: "retrying a terminal job does not decrement its live counter",
    file: functions,
    search: "ARRAY[j.state], ARRAY[-1::bigint]);",
    replace: "ARRAY[j.state], ARRAY[0::bigint]);",
    judges: [counters],
  },
  {
    id: "dlq-move-counted-as-failed",
    mistake: "a failure moved to the DLQ is still counted as a failed job",
    file: functions,
    search: "FROM winners w WHERE NOT w.to_dlq HAVING count(*) > 0",
    replace: "FROM winners w HAVING count(*) > 0",
    judges: [counters],
  },
  {
    id: "purge-queue-keeps-count",
    mistake: "purgeQueue leaves the live counters of the terminal jobs it purges",
    file: functions,
    search: `ARRAY[j.state],
        ARRAY[-1::bigint]);`,
    replace: `ARRAY[j.state],
        ARRAY[0::bigint]);`,
    judges: [counters],
  },
  {
    id: "heartbeat-ignores-closure",
    mistake: "a heartbeat of an attempt that has already ended is accepted",
    file: functions,
    search: `SELECT r.id, r.run_lease + 1 AS lease FROM {{schema}}.attempt_rows(p_ids, p_leases) r
    WHERE NOT EXISTS`,
    replace: `SELECT r.id, r.run_lease + 1 AS lease FROM {{schema}}.attempt_rows(p_ids, p_leases) r
    WHERE true OR NOT EXISTS`,
    judges: [exits],
  },
  {
    id: "finalize-ignores-closure",
    mistake: "fail/cancel of an attempt that has already ended still writes its terminal fact",
    file: functions,
    search: `SELECT t.* FROM target t JOIN closed c ON c.id = t.id AND c.run_lease = t.new_lease
  ), dead AS (`,
    replace: `SELECT t.* FROM target t WHERE (SELECT count(*) FROM closed) >= 0
  ), dead AS (`,
    judges: [counters, exits],
  },
  {
    id: "finalize-keeps-unique-claim",
    mistake: "failing or cancelling a running unique job does not release its unique key",
    file: functions,
    search: "WHERE u.unique_key = w.unique_key AND u.job_id = w.id\n      AND (w.to_dlq",
    replace: "WHERE false AND u.unique_key = w.unique_key AND u.job_id = w.id\n      AND (w.to_dlq",
    judges: [exits],
  },
  {
    id: "cancel-keeps-unique-claim",
    mistake: "cancelling a pending or scheduled unique job does not release its unique key",
    file: functions,
    search: "DELETE FROM {{schema}}.unique_claims u WHERE u.unique_key = j.unique_key AND u.job_id = p_id;",
    replace: "NULL;",
    judges: [exits],
  },
  {
    id: "cancel-deferred-stays-claimable",
    mistake: "a cancelled scheduled job gets no tombstone, so its ready row can be claimed",
    file: functions,
    search:
      "INSERT INTO {{schema}}.ready_tombstones (ready_slot, id, lane_seq) VALUES (v_slot, p_id, v_seq);",
    replace: "NULL;",
    judges: [exits],
  },
  {
    id: "cancel-deferred-not-removed",
    mistake: "a cancelled scheduled job stays in deferred_jobs, so promotion brings it back",
    file: functions,
    search: "DELETE FROM {{schema}}.deferred_jobs f WHERE f.id = p_id;",
    replace: "NULL;",
    judges: [exits],
  },
  {
    id: "retry-dlq-keeps-entry",
    mistake: "retrying a DLQ entry leaves the entry in the DLQ",
    file: functions,
    search: "DELETE FROM {{schema}}.dlq_entries e WHERE e.id = ANY (v_ids) RETURNING e.*",
    replace: "SELECT e.* FROM {{schema}}.dlq_entries e WHERE e.id = ANY (v_ids)",
    judges: [exits],
  },
  {
    id: "producer-leaves-lane-idle",
    mistake:
      "a producer does not mark its lane busy, so a claim takes the idle fast path past its reservation",
    file: hotPath,
    search: "PERFORM pg_advisory_xact_lock_shared({{schema}}.lock_space(6), v_lane);",
    replace: "NULL;",
    judges: [concurrency],
  },
  {
    id: "attempt-probe-ignores-lease",
    mistake:
      "an attempt write (completion, heartbeat, retry, failure, cancel; with or without its ready slot) is applied whatever its run_lease",
    file: hotPath,
    search: "WHERE r0.ready_slot = v_slot AND r0.id = d.id AND r0.run_lease = d.run_lease - 1 OFFSET 0",
    replace: "WHERE r0.ready_slot = v_slot AND r0.id = d.id OFFSET 0",
    judges: [exits],
  },
  {
    id: "stale-writer-not-listed",
    mistake:
      "a writer whose snapshot predates its slot's retirement does not list the slot, so claims never read its rows",
    file: hotPath,
    search: "      INSERT INTO {{schema}}.queue_ring_strays (slot) VALUES (v_slot);",
    replace: "      NULL;",
    judges: [concurrency, rings],
  },
  {
    id: "retire-ignores-writers",
    mistake:
      "slot retirement does not wait for the slot's writers in flight, so it retires a slot about to hold rows",
    file: hotPath,
    search: "      PERFORM pg_advisory_xact_lock({{schema}}.lock_space(7), v_slot);",
    replace: "      NULL;",
    judges: [concurrency, rings],
  },
  {
    id: "claim-ignores-strays",
    mistake: "a claim reads only the slots the ledger calls live, not the listed strays",
    file: hotPath,
    search: "        || ARRAY(SELECT s.slot FROM {{schema}}.queue_ring_strays s)",
    replace: "        || ARRAY[]::smallint[]",
    judges: [concurrency, rings],
  },
  {
    id: "claim-window-in-slot-order",
    mistake:
      "a claim takes a lane's rows slot by slot as the live slots are listed, not in lane order across them, so a newer slot's rows can pass an older slot's",
    file: hotPath,
    search: "    v_win := ARRAY(SELECT w FROM unnest(v_win) w ORDER BY w.lane_seq LIMIT p_limit);",
    replace: "    v_win := ARRAY(SELECT w FROM unnest(v_win) w LIMIT p_limit);",
    judges: [concurrency, rings],
  },
  {
    id: "single-claim-receipt-keeps-cursor",
    mistake:
      "a claim of one job writes its receipt without the job's lane_seq, so the lane's cursor stays put and the job is handed out again",
    file: hotPath,
    search: "        VALUES (v_cslot, v_lane, v_win[1].lane_seq, v_now,",
    replace: "        VALUES (v_cslot, v_lane, 0, v_now,",
  },
  {
    id: "window-reads-slot-twice",
    mistake:
      "a claim reads a live slot once for each time it is listed (in the ledger and as a stray), so it hands the slot's rows out twice",
    file: hotPath,
    search: "    CONTINUE WHEN v_slot = ANY (v_read);",
    replace: "    NULL;",
    judges: [concurrency, rings],
  },
  {
    id: "claim-skips-lookahead",
    mistake:
      "a claim without a kind filter takes the first rows in lane order without looking ahead for an earlier run time",
    file: hotPath,
    search: "      IF cardinality(v_win) = v_left THEN\n        IF (SELECT min",
    replace: "      IF false THEN\n        IF (SELECT min",
  },
  {
    id: "read-model-skips-out-of-order-receipts",
    mistake:
      "the read model finds no receipt for a job claimed out of lane order, so it reads as running since never",
    file: hotPath,
    search: "WHERE x.fam IN ('r', 'c') AND NOT x.pending AND x.tomb_claimed AND",
    replace: "WHERE false AND",
    judges: [readModel],
  },
  {
    id: "read-model-newest-receipt",
    mistake:
      "the read model looks for an in-order claim in the lane's newest receipt instead of the one covering it",
    file: hotPath,
    search: "        ORDER BY cb.max_seq LIMIT 1\n      ) f",
    replace: "        ORDER BY cb.max_seq DESC LIMIT 1\n      ) f",
    judges: [readModel],
  },
  {
    id: "claim-plans-from-statistics",
    mistake:
      "a claim plans its reads from the ring's statistics, so after a VACUUM of an empty ring it sorts a whole lane",
    file: hotPath,
    search:
      "SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_sort = off AS $$\n#variable_conflict use_column\nDECLARE\n  v_lane integer;",
    replace: "AS $$\n#variable_conflict use_column\nDECLARE\n  v_lane integer;",
    judges: [plans],
  },
]
