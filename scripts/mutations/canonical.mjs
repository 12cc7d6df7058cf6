// Deliberate mistakes in the canonical engine (packages/runtime/src/CanonicalEngine.ts and its statements
// under internal/sql/) that the engine contract suite must catch; `pnpm mutation --engine canonical`
// applies them one at a time. Each `search` must occur exactly once in `file`.
const jobs = "packages/runtime/src/internal/sql/jobs.ts"
const dlq = "packages/runtime/src/internal/sql/dlq.ts"
const queues = "packages/runtime/src/internal/sql/queues.ts"
const engine = "packages/runtime/src/CanonicalEngine.ts"

export default [
  {
    id: "claim-ignores-priority",
    mistake: "claim order ignores priority",
    file: jobs,
    search: "ORDER BY priority, run_at, id",
    replace: "ORDER BY run_at, id",
  },
  {
    id: "claim-run-time-before-priority",
    mistake: "claim orders by run time before priority",
    file: jobs,
    search: "ORDER BY priority, run_at, id",
    replace: "ORDER BY run_at, priority, id",
  },
  {
    id: "claim-ignores-pause",
    mistake: "claim ignores a paused queue",
    file: jobs,
    search: "AND NOT EXISTS (SELECT 1 FROM awa.queues q WHERE q.name = $1 AND q.paused)",
    replace: "",
  },
  {
    id: "claim-keeps-run-lease",
    mistake: "claim does not start a new run lease",
    file: jobs,
    search: "run_lease = j.run_lease + 1, attempted_at = now()",
    replace: "run_lease = j.run_lease, attempted_at = now()",
  },
  {
    id: "claim-ignores-kinds",
    mistake: "claim ignores its kinds filter",
    file: jobs,
    search: "AND ($4::text[] IS NULL OR kind = ANY ($4::text[]))",
    replace: "AND ($4::text[] IS NULL OR true)",
  },
  {
    id: "complete-stale-lease",
    mistake: "a completion with a stale run_lease is accepted",
    file: jobs,
    search: "j.id = d.id AND j.run_lease = d.run_lease AND j.state = 'running'\n     RETURNING j.id\n   )",
    replace: "j.id = d.id AND j.state = 'running'\n     RETURNING j.id\n   )",
  },
  {
    id: "complete-any-state",
    mistake: "a completion lands on a job that is no longer running",
    file: jobs,
    search: "j.id = d.id AND j.run_lease = d.run_lease AND j.state = 'running'\n     RETURNING j.id\n   )",
    replace: "j.id = d.id AND j.run_lease = d.run_lease\n     RETURNING j.id\n   )",
  },
  {
    id: "heartbeat-stale-lease",
    mistake: "a heartbeat with a stale run_lease is accepted",
    file: jobs,
    search:
      "`UPDATE awa.jobs j SET heartbeat_at = now()\n   FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)\n   WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease",
    replace:
      "`UPDATE awa.jobs j SET heartbeat_at = now()\n   FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)\n   WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id",
  },
  {
    id: "heartbeat-finished-attempt",
    mistake: "a heartbeat is accepted for an attempt that already finished",
    file: jobs,
    search:
      "`UPDATE awa.jobs j SET heartbeat_at = now()\n   FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)\n   WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease AND j.state IN ('running', 'waiting_external')",
    replace:
      "`UPDATE awa.jobs j SET heartbeat_at = now()\n   FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)\n   WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease",
  },
  {
    id: "unique-not-held-running",
    mistake: "a unique key is not held while its job runs",
    file: jobs,
    search: "decode(i.unique_key, 'hex'), i.unique_states::awa.job_state[]",
    replace: "decode(i.unique_key, 'hex'), array_remove(i.unique_states::awa.job_state[], 'running')",
  },
  {
    id: "cancel-unique-terminal",
    mistake: "cancel by unique key hits a terminal holder",
    file: jobs,
    search:
      "WHERE unique_key = decode($1::text, 'hex') AND state = ANY (unique_states)\n       AND state NOT IN ('completed', 'failed', 'cancelled')",
    replace: "WHERE unique_key = decode($1::text, 'hex') AND state = ANY (unique_states)",
  },
  {
    id: "cancel-terminal-job",
    mistake: "admin cancel changes a terminal job",
    file: jobs,
    search: "WHERE id = $1::bigint AND state NOT IN ('completed', 'failed', 'cancelled')",
    replace: "WHERE id = $1::bigint",
  },
  {
    id: "cancel-running-silent",
    mistake: "cancelling a running job does not tell its worker",
    file: jobs,
    search:
      "SELECT pg_notify('awa_job_cancelled', done.id::text) FROM done WHERE done.previous_state IN ('running', 'waiting_external')\n   )\n   SELECT done.*, (SELECT count(*) FROM told) AS told FROM done`,\n)\n\n/**\n * Cancels the non-terminal job holding",
    replace:
      "SELECT 1 FROM done WHERE false\n   )\n   SELECT done.*, (SELECT count(*) FROM told) AS told FROM done`,\n)\n\n/**\n * Cancels the non-terminal job holding",
  },
  {
    id: "stats-running-as-available",
    mistake: "queue stats count running jobs as available",
    file: jobs,
    search: "`SELECT j.queue, j.state, count(*)::bigint AS count FROM awa.jobs j GROUP BY j.queue, j.state`",
    replace:
      "`SELECT j.queue, CASE WHEN j.state = 'running' THEN 'available'::awa.job_state ELSE j.state END AS state, count(*)::bigint AS count FROM awa.jobs j GROUP BY 1, 2`",
  },
  {
    id: "stats-no-dlq-count",
    mistake: "queue stats leave out dead-lettered jobs",
    file: engine,
    search: "for (const row of dlq) entry(row.queue as string).deadLettered = toNumber(row.count)",
    replace: "for (const row of dlq) entry(row.queue as string)",
  },
  {
    id: "list-desc-repeats-cursor",
    mistake: "descending pagination repeats the cursor row",
    file: jobs,
    search: "AND ($5::bigint IS NULL OR j.id < $5)",
    replace: "AND ($5::bigint IS NULL OR j.id <= $5)",
  },
  {
    id: "list-ignores-tag",
    mistake: "listing jobs ignores the tag filter",
    file: jobs,
    search: "AND ($4::text IS NULL OR $4 = ANY (j.tags)) AND ($5::bigint IS NULL OR j.id > $5)",
    replace: "AND ($4::text IS NULL OR true) AND ($5::bigint IS NULL OR j.id > $5)",
  },
  {
    id: "make-due-ignores-queue",
    mistake: "makeDue ignores its queue filter",
    file: jobs,
    search: "AND ($1::bigint[] IS NULL OR id = ANY ($1::bigint[])) AND ($2::text IS NULL OR queue = $2)",
    replace: "AND ($1::bigint[] IS NULL OR id = ANY ($1::bigint[])) AND ($2::text IS NULL OR true)",
  },
  {
    id: "make-due-ignores-window",
    mistake: "makeDue ignores its time window",
    file: jobs,
    search: "AND ($4::bigint IS NULL OR run_at <= now() + $4::bigint * interval '1 millisecond')",
    replace: "AND ($4::bigint IS NULL OR true)",
  },
  {
    id: "make-due-resets-attempts",
    mistake: "makeDue resets attempt counts",
    file: jobs,
    search: "UPDATE awa.jobs j SET state = 'available', run_at = least(j.run_at, now())",
    replace: "UPDATE awa.jobs j SET state = 'available', run_at = least(j.run_at, now()), attempt = 0",
  },
  {
    id: "release-consumes-attempt",
    mistake: "release consumes an attempt",
    file: jobs,
    search: "SET state = 'available', attempt = greatest(j.attempt - 1, 0), heartbeat_at = NULL",
    replace: "SET state = 'available', attempt = j.attempt, heartbeat_at = NULL",
  },
  {
    id: "release-stale-lease",
    mistake: "release with a stale run_lease is accepted",
    file: jobs,
    search:
      "deadline_at = NULL\n     FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)\n     WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease",
    replace:
      "deadline_at = NULL\n     FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)\n     WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id",
  },
  {
    id: "snooze-consumes-attempt",
    mistake: "snooze consumes an attempt",
    file: jobs,
    search: "attempt = greatest(j.attempt - 1, 0)\n     FROM",
    replace: "attempt = j.attempt\n     FROM",
  },
  {
    id: "retry-drops-error",
    mistake: "retry does not record the error",
    file: jobs,
    // The statement's source text interpolates appendError; the search matches that text literally.
    search:
      "run_at = now() + d.delay_ms * interval '1 millisecond',\n       errors = $" +
      '{appendError("d.error")}',
    replace: "run_at = now() + d.delay_ms * interval '1 millisecond',\n       errors = j.errors",
  },
  {
    id: "retry-zero-delay-not-available",
    mistake: "a retry without delay is not available at once",
    file: jobs,
    search:
      "state = CASE WHEN d.delay_ms <= 0 THEN 'available'::awa.job_state ELSE 'retryable'::awa.job_state END",
    replace: "state = 'retryable'::awa.job_state",
  },
  {
    id: "fail-ignores-dlq",
    mistake: "failing ignores the queue's DLQ setting",
    file: jobs,
    search: "coalesce(q.dlq_enabled, false) AS to_dlq",
    replace: "false AS to_dlq",
  },
  {
    id: "dlq-retry-keeps-attempts",
    mistake: "retrying from the DLQ keeps the old attempt count",
    file: dlq,
    search: "'available', m.priority, 0, m.max_attempts",
    replace: "'available', m.priority, m.attempt, m.max_attempts",
  },
  {
    id: "promote-ignores-run-at",
    mistake: "promote makes jobs available before they are due",
    file: jobs,
    search: "WHERE state IN ('scheduled', 'retryable') AND run_at <= now()",
    replace: "WHERE state IN ('scheduled', 'retryable')",
  },
  {
    id: "rescue-fresh-heartbeat",
    mistake: "rescue takes attempts with fresh heartbeats",
    file: jobs,
    search: "AND (j.heartbeat_at < now() - $1::bigint * interval '1 millisecond'",
    replace: "AND (j.heartbeat_at <= now() + 0 * $1::bigint * interval '1 millisecond'",
  },
  {
    id: "rescue-ignores-deadline",
    mistake: "rescue ignores passed deadlines",
    file: jobs,
    search: "OR j.deadline_at < now() - $2::bigint * interval '1 millisecond')\n   ORDER BY j.id",
    replace: ")\n   ORDER BY j.id",
  },
  {
    id: "retention-non-terminal",
    mistake: "retention deletes non-terminal jobs",
    file: jobs,
    search:
      "WHERE finalized_at < now() - least($1::bigint, $2::bigint) * interval '1 millisecond'\n       AND ((state = 'completed'",
    replace:
      "WHERE coalesce(finalized_at, created_at) < now() - least($1::bigint, $2::bigint) * interval '1 millisecond'\n       AND (state NOT IN ('completed', 'failed', 'cancelled') OR (state = 'completed'",
  },
  {
    id: "retention-failed-early",
    mistake: "retention deletes failed jobs inside their retention",
    file: jobs,
    search: "OR (state IN ('failed', 'cancelled') AND finalized_at < now() - $2::bigint",
    replace: "OR (state IN ('failed', 'cancelled') AND finalized_at < now() - $1::bigint",
  },
  {
    id: "available-depth-all-states",
    mistake: "available depth counts jobs in every state",
    file: jobs,
    search: "FROM awa.jobs j WHERE j.state = 'available' GROUP BY j.queue",
    replace: "FROM awa.jobs j GROUP BY j.queue",
  },
  {
    id: "list-queues-paused-wrong",
    mistake: "queue settings report the DLQ flag as paused",
    file: queues,
    search: "`SELECT q.name, q.paused, q.paused_at, q.dlq_enabled FROM awa.queues q ORDER BY q.name`",
    replace:
      "`SELECT q.name, q.dlq_enabled AS paused, q.paused_at, q.dlq_enabled FROM awa.queues q ORDER BY q.name`",
  },
  {
    id: "insert-many-misaligned",
    mistake: "insertMany results are misaligned after a skipped unique duplicate",
    file: engine,
    search:
      "if (candidate !== undefined && (row.uniqueKey === null || candidate.unique_key === row.uniqueKey)) {",
    replace: "if (candidate !== undefined) {",
  },
  {
    id: "insert-in-transaction-scheduled",
    mistake: "a job due now, inserted late in a transaction, is stored as scheduled",
    file: jobs,
    search: "CASE WHEN r.run_at > clock_timestamp() THEN",
    replace: "CASE WHEN r.run_at > now() THEN",
  },
  {
    id: "purge-queue-keeps-unique",
    mistake: "purgeQueue leaves unique jobs (and their keys) behind",
    file: jobs,
    search: "DELETE FROM awa.jobs j WHERE j.queue = $1 RETURNING 1",
    replace: "DELETE FROM awa.jobs j WHERE j.queue = $1 AND j.unique_key IS NULL RETURNING 1",
  },
  {
    id: "dlq-list-repeats-cursor",
    mistake: "DLQ pagination repeats the cursor row",
    file: dlq,
    search: "($3::bigint IS NULL OR d.id > $3)",
    replace: "($3::bigint IS NULL OR d.id >= $3)",
  },
]
