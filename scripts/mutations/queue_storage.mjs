// Deliberate mistakes in the queue-storage engine for `pnpm mutation --engine queue_storage`, in the same
// shape as canonical.mjs: { id, mistake, file, search, replace }, each `search` occurring exactly once in a
// file under packages/runtime/src. Most of this engine's logic lives in SQL functions of the queue-storage
// migration set, which the mutation script cannot patch yet (it copies packages/runtime/src only); these
// are the issue-8 mistakes that reach its TypeScript and its statements.
const engine = "packages/runtime/src/QueueStorageEngine.ts"
const jobs = "packages/runtime/src/internal/sql/queueStorage/jobs.ts"
const dlq = "packages/runtime/src/internal/sql/queueStorage/dlq.ts"
const queues = "packages/runtime/src/internal/sql/queueStorage/queues.ts"

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
]
