// Named statements on awa.jobs (the canonical engine's hot path and job-level admin operations).
import { statement } from "../../PgExecutor.js"

// Times as epoch milliseconds (float8): parsing a number is much cheaper than a timestamp string on the hot path.
const epochMs = (column: string) => `date_part('epoch', ${column}) * 1000 AS ${column.slice(2)}`
const claimedColumns = `j.id, j.kind, j.queue, j.args, j.priority, j.attempt, j.max_attempts, j.run_lease,
  ${epochMs("j.run_at")}, ${epochMs("j.attempted_at")}, ${epochMs("j.deadline_at")}, j.attempt_timeout_ms, j.tags,
  j.metadata, ${epochMs("j.created_at")}`

/** Every column of a job, as admin reads return it. */
export const jobColumns = `j.id, j.kind, j.queue, j.args, j.state, j.priority, j.attempt, j.max_attempts, j.run_lease,
  j.run_at, j.attempted_at, j.heartbeat_at, j.deadline_at, j.finalized_at, j.attempt_timeout_ms, j.errors, j.tags,
  j.metadata, encode(j.unique_key, 'hex') AS unique_key, j.unique_states, j.created_at`

// An error record gets the database's clock so every recorded time comes from one clock, written as an ISO
// 8601 UTC string (the form every other time in the API takes) rather than Postgres's text form.
const appendError = (errorExpr: string, errorsColumn = "j.errors") =>
  `coalesce(${errorsColumn}, '[]'::jsonb) || jsonb_build_array((${errorExpr})::jsonb || jsonb_build_object('at',
     to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))`

/**
 * Inserts many jobs in one statement from parallel arrays ($1 kind, $2 queue, $3 args JSON, $4 priority,
 * $5 max_attempts, $6 run_at, $7 delay ms, $8 timeout ms, $9 tags JSON, $10 metadata JSON, $11 unique key
 * hex, $12 unique states literal). A job is scheduled only when its run time is still ahead of the clock
 * (clock_timestamp(), not the transaction's start: a job inserted late in a long transaction with
 * `runAt: new Date()` is due, not scheduled). Rows are inserted in array order; unique conflicts are skipped and
 * left out of RETURNING (the caller maps rows back by id order and unique key). Prepared: an INSERT scans
 * nothing, so a generic plan is as good as a custom one and saves planning on every single-job insert.
 */
export const insertJobs = statement(
  "jobs_insert",
  `INSERT INTO awa.jobs AS j (kind, queue, args, state, priority, max_attempts, run_at, attempt_timeout_ms, tags,
     metadata, unique_key, unique_states)
   SELECT i.kind, i.queue, i.args::jsonb,
     CASE WHEN r.run_at > clock_timestamp() THEN 'scheduled'::awa.job_state ELSE 'available'::awa.job_state END,
     i.priority, i.max_attempts, r.run_at, i.timeout_ms,
     CASE WHEN i.tags IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(i.tags::jsonb)) END,
     coalesce(i.metadata::jsonb, '{}'::jsonb),
     decode(i.unique_key, 'hex'), i.unique_states::awa.job_state[]
   FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::integer[], $6::timestamptz[], $7::bigint[],
     $8::integer[], $9::text[], $10::text[], $11::text[], $12::text[]) WITH ORDINALITY
     AS i(kind, queue, args, priority, max_attempts, run_at, delay_ms, timeout_ms, tags, metadata, unique_key,
       unique_states, ord)
   CROSS JOIN LATERAL (
     SELECT coalesce(i.run_at, now() + i.delay_ms * interval '1 millisecond', now()) AS run_at
   ) AS r
   ORDER BY i.ord
   ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state = ANY (unique_states) DO NOTHING
   RETURNING j.id, j.state, j.run_at, encode(j.unique_key, 'hex') AS unique_key`,
)

/** Finds the jobs currently holding unique keys ($1 hex keys). */
export const findUniqueHolders = statement(
  "jobs_unique_holders",
  `SELECT j.id, j.state, encode(j.unique_key, 'hex') AS unique_key
   FROM awa.jobs j
   WHERE j.unique_key = ANY (ARRAY(SELECT decode(k, 'hex') FROM unnest($1::text[]) AS k))
     AND j.state = ANY (j.unique_states)`,
  { prepared: false },
)

/** The COPY target for the bulk insert path (text format, columns in this order). */
export const copyJobsSql = `COPY awa.jobs (kind, queue, args, state, priority, max_attempts, run_at, attempt_timeout_ms,
  tags, metadata) FROM STDIN`

/**
 * Claims up to $2 available jobs of queue $1 (unless the queue is paused), of kinds $4 (NULL for any),
 * highest priority first, with FOR UPDATE SKIP LOCKED; each claim increments attempt and run_lease and sets
 * the attempt's deadline from the job's timeout or $3 ms.
 */
export const claimJobs = statement(
  "jobs_claim",
  // id = ANY(ARRAY(subquery)) keeps the plan a primary-key lookup per claimed row; a join with a CTE
  // may be planned as a hash join over the whole table.
  `UPDATE awa.jobs j
   SET state = 'running', attempt = j.attempt + 1, run_lease = j.run_lease + 1, attempted_at = now(),
     heartbeat_at = now(), deadline_at = now() + coalesce(j.attempt_timeout_ms, $3::integer) * interval '1 millisecond'
   WHERE j.id = ANY (ARRAY(
     SELECT id FROM awa.jobs
     WHERE state = 'available' AND queue = $1 AND ($4::text[] IS NULL OR kind = ANY ($4::text[]))
       AND NOT EXISTS (SELECT 1 FROM awa.queues q WHERE q.name = $1 AND q.paused)
     ORDER BY priority, run_at, id
     LIMIT $2
     FOR UPDATE SKIP LOCKED
   ))
   RETURNING ${claimedColumns}`,
)

// Attempt writes below repeat the ids as \`j.id = ANY ($1)\`: it lets the planner look rows up by primary
// key instead of scanning the in-flight index, whose dead entries pile up between vacuums.

/**
 * Completes attempts ($1 ids, $2 run leases) still running under those leases. Returns one row: how many
 * were completed and, only when that is fewer than given, the ids that were.
 */
export const completeJobs = statement(
  "jobs_complete",
  `WITH done AS (
     UPDATE awa.jobs j SET state = 'completed', finalized_at = now()
     FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)
     WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease AND j.state = 'running'
     RETURNING j.id
   )
   SELECT count(*)::integer AS completed,
     CASE WHEN count(*) < cardinality($1::bigint[]) THEN array_agg(done.id) END AS ids
   FROM done`,
  { prepared: false },
)

/** Reads the state and lease of jobs ($1 ids): used to tell an already-applied write from a stale one. */
export const jobLeases = statement(
  "jobs_leases",
  `SELECT j.id, j.state, j.run_lease FROM awa.jobs j WHERE j.id = ANY ($1::bigint[])`,
  { prepared: false },
)

/**
 * Schedules attempts for retry ($1 ids, $2 leases, $3 delay ms, $4 error JSON): retryable at now + delay
 * (available at once when the delay is 0, with a wake-up NOTIFY), recording the error.
 */
export const retryJobs = statement(
  "jobs_retry",
  `WITH done AS (
     UPDATE awa.jobs j SET
       state = CASE WHEN d.delay_ms <= 0 THEN 'available'::awa.job_state ELSE 'retryable'::awa.job_state END,
       run_at = now() + d.delay_ms * interval '1 millisecond',
       errors = ${appendError("d.error")}
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS d(id, run_lease, delay_ms, error)
     WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease AND j.state IN ('running', 'waiting_external')
     RETURNING j.id, j.queue, j.state
   ), woken AS (
     SELECT pg_notify('awa_jobs_available', w.queue) FROM (SELECT DISTINCT queue FROM done WHERE state = 'available') w
   )
   SELECT done.id, (SELECT count(*) FROM woken) AS woken FROM done`,
  { prepared: false },
)

/**
 * Snoozes attempts ($1 ids, $2 leases, $3 delay ms): back to scheduled (or available for 0) at now + delay,
 * giving the attempt back so a snooze never consumes one.
 */
export const snoozeJobs = statement(
  "jobs_snooze",
  `WITH done AS (
     UPDATE awa.jobs j SET
       state = CASE WHEN d.delay_ms <= 0 THEN 'available'::awa.job_state ELSE 'scheduled'::awa.job_state END,
       run_at = now() + d.delay_ms * interval '1 millisecond',
       attempt = greatest(j.attempt - 1, 0)
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(id, run_lease, delay_ms)
     WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease AND j.state IN ('running', 'waiting_external')
     RETURNING j.id, j.queue, j.state
   ), woken AS (
     SELECT pg_notify('awa_jobs_available', w.queue) FROM (SELECT DISTINCT queue FROM done WHERE state = 'available') w
   )
   SELECT done.id, (SELECT count(*) FROM woken) AS woken FROM done`,
  { prepared: false },
)

/** Cancels attempts from their handler ($1 ids, $2 leases, $3 error JSON with the reason). */
export const cancelAttempts = statement(
  "jobs_cancel_attempts",
  `UPDATE awa.jobs j SET state = 'cancelled', finalized_at = now(), errors = ${appendError("d.error")}
   FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS d(id, run_lease, error)
   WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease AND j.state IN ('running', 'waiting_external')
   RETURNING j.id`,
  { prepared: false },
)

/**
 * Fails attempts ($1 ids, $2 leases, $3 error JSON): jobs on a queue with the DLQ enabled move to awa.dlq
 * (keeping id and run_lease), the others become failed. Returns each id with whether it went to the DLQ.
 */
export const failAttempts = statement(
  "jobs_fail_attempts",
  `WITH d AS (
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS d(id, run_lease, error)
   ), target AS (
     SELECT j.id, d.error, coalesce(q.dlq_enabled, false) AS to_dlq
     FROM awa.jobs j
     JOIN d ON j.id = d.id AND j.run_lease = d.run_lease
     LEFT JOIN awa.queues q ON q.name = j.queue
     WHERE j.id = ANY ($1::bigint[]) AND j.state IN ('running', 'waiting_external')
     FOR UPDATE OF j
   ), moved AS (
     DELETE FROM awa.jobs j USING target t
     WHERE j.id = t.id AND t.to_dlq
     RETURNING j.*, t.error AS new_error
   ), dead AS (
     INSERT INTO awa.dlq (id, kind, queue, args, priority, attempt, max_attempts, run_lease, attempt_timeout_ms,
       errors, tags, metadata, unique_key, unique_states, reason, created_at)
     SELECT m.id, m.kind, m.queue, m.args, m.priority, m.attempt, m.max_attempts, m.run_lease, m.attempt_timeout_ms,
       ${appendError("m.new_error", "m.errors")},
       m.tags, m.metadata, m.unique_key, m.unique_states, coalesce(m.new_error::jsonb ->> 'message', 'failed'),
       m.created_at
     FROM moved m
     RETURNING id
   ), failed AS (
     UPDATE awa.jobs j SET state = 'failed', finalized_at = now(), errors = ${appendError("t.error")}
     FROM target t
     WHERE j.id = t.id AND NOT t.to_dlq
     RETURNING j.id
   )
   SELECT id, true AS dlq FROM dead UNION ALL SELECT id, false AS dlq FROM failed`,
  { prepared: false },
)

/** Records a heartbeat for attempts ($1 ids, $2 leases) still running; returns the ids still owned. */
export const heartbeatJobs = statement(
  "jobs_heartbeat",
  `UPDATE awa.jobs j SET heartbeat_at = now()
   FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)
   WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease AND j.state IN ('running', 'waiting_external')
   RETURNING j.id`,
  { prepared: false },
)

/**
 * Releases attempts ($1 ids, $2 leases) a stopping worker did not finish: available again with the attempt
 * given back, waking other workers.
 */
export const releaseJobs = statement(
  "jobs_release",
  `WITH done AS (
     UPDATE awa.jobs j SET state = 'available', attempt = greatest(j.attempt - 1, 0), heartbeat_at = NULL,
       deadline_at = NULL
     FROM unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease)
     WHERE j.id = ANY ($1::bigint[]) AND j.id = d.id AND j.run_lease = d.run_lease AND j.state = 'running'
     RETURNING j.id, j.queue
   ), woken AS (
     SELECT pg_notify('awa_jobs_available', w.queue) FROM (SELECT DISTINCT queue FROM done) w
   )
   SELECT done.id, (SELECT count(*) FROM woken) AS woken FROM done`,
  { prepared: false },
)

/** Promotes up to $1 due scheduled/retryable jobs to available and wakes workers of their queues. */
export const promoteDueJobs = statement(
  "jobs_promote_due",
  `WITH due AS (
     SELECT id FROM awa.jobs
     WHERE state IN ('scheduled', 'retryable') AND run_at <= now()
     ORDER BY run_at
     LIMIT $1
     FOR UPDATE SKIP LOCKED
   ), promoted AS (
     UPDATE awa.jobs j SET state = 'available' FROM due WHERE j.id = due.id RETURNING j.queue
   ), woken AS (
     SELECT pg_notify('awa_jobs_available', p.queue) FROM (SELECT DISTINCT queue FROM promoted) p
   )
   SELECT (SELECT count(*) FROM promoted)::integer AS promoted, (SELECT count(*) FROM woken)::integer AS queues`,
)

/**
 * Finds up to $3 running attempts to rescue: heartbeat older than $1 ms, or deadline passed more than $2 ms
 * ago. The rows are locked for the caller's transaction, skipping any a heartbeat is updating right now, so
 * no heartbeat lands between this decision and the rescue's write.
 */
export const findRescuable = statement(
  "jobs_find_rescuable",
  `SELECT j.id, j.run_lease, j.attempt, j.max_attempts, j.kind, j.queue,
     CASE WHEN j.deadline_at < now() - $2::bigint * interval '1 millisecond' THEN 'deadline' ELSE 'heartbeat' END
       AS reason
   FROM awa.jobs j
   WHERE j.state IN ('running', 'waiting_external')
     AND (j.heartbeat_at < now() - $1::bigint * interval '1 millisecond'
       OR j.deadline_at < now() - $2::bigint * interval '1 millisecond')
   ORDER BY j.id
   LIMIT $3
   FOR UPDATE OF j SKIP LOCKED`,
)

/**
 * Deletes up to $3 terminal jobs: completed ones finalized more than $1 ms ago, failed or cancelled ones
 * more than $2 ms ago. Returns the count.
 */
export const deleteRetainedJobs = statement(
  "jobs_delete_retained",
  `WITH doomed AS (
     SELECT id FROM awa.jobs
     WHERE finalized_at < now() - least($1::bigint, $2::bigint) * interval '1 millisecond'
       AND ((state = 'completed' AND finalized_at < now() - $1::bigint * interval '1 millisecond')
         OR (state IN ('failed', 'cancelled') AND finalized_at < now() - $2::bigint * interval '1 millisecond'))
     ORDER BY finalized_at
     LIMIT $3
     FOR UPDATE SKIP LOCKED
   ), deleted AS (
     DELETE FROM awa.jobs j USING doomed WHERE j.id = doomed.id RETURNING 1
   )
   SELECT count(*)::integer AS deleted FROM deleted`,
)

/** Reads one job ($1 id). */
export const getJob = statement("jobs_get", `SELECT ${jobColumns} FROM awa.jobs j WHERE j.id = $1::bigint`)

/**
 * Lists jobs, oldest id first, after cursor $5 (exclusive), filtered by queue $1, kind $2, states $3 and
 * tag $4 (each NULL for any), at most $6 rows.
 */
export const listJobsAsc = statement(
  "jobs_list_asc",
  `SELECT ${jobColumns} FROM awa.jobs j
   WHERE ($1::text IS NULL OR j.queue = $1) AND ($2::text IS NULL OR j.kind = $2)
     AND ($3::awa.job_state[] IS NULL OR j.state = ANY ($3::awa.job_state[]))
     AND ($4::text IS NULL OR $4 = ANY (j.tags)) AND ($5::bigint IS NULL OR j.id > $5)
   ORDER BY j.id
   LIMIT $6`,
)

/** Like `listJobsAsc`, newest id first, before cursor $5 (exclusive). */
export const listJobsDesc = statement(
  "jobs_list_desc",
  `SELECT ${jobColumns} FROM awa.jobs j
   WHERE ($1::text IS NULL OR j.queue = $1) AND ($2::text IS NULL OR j.kind = $2)
     AND ($3::awa.job_state[] IS NULL OR j.state = ANY ($3::awa.job_state[]))
     AND ($4::text IS NULL OR $4 = ANY (j.tags)) AND ($5::bigint IS NULL OR j.id < $5)
   ORDER BY j.id DESC
   LIMIT $6`,
)

/** Exact job counts per queue and state. */
export const countJobsByQueueAndState = statement(
  "jobs_count_by_queue_state",
  `SELECT j.queue, j.state, count(*)::bigint AS count FROM awa.jobs j GROUP BY j.queue, j.state`,
)

/** Number of available jobs per queue (the claimable depth), from the claim index. */
export const availableDepth = statement(
  "jobs_available_depth",
  `SELECT j.queue, count(*)::bigint AS count FROM awa.jobs j WHERE j.state = 'available' GROUP BY j.queue`,
)

/**
 * Retries job $1 now with a fresh attempt count, from any state but running/available/waiting_external;
 * returns the job and its previous state, waking workers of its queue.
 */
export const retryJobNow = statement(
  "jobs_retry_now",
  `WITH old AS (
     SELECT id, state FROM awa.jobs WHERE id = $1::bigint AND state NOT IN ('running', 'available', 'waiting_external')
     FOR UPDATE
   ), done AS (
     UPDATE awa.jobs j SET state = 'available', attempt = 0, run_at = now(), finalized_at = NULL, attempted_at = NULL,
       heartbeat_at = NULL, deadline_at = NULL
     FROM old WHERE j.id = old.id
     RETURNING ${jobColumns}
   ), woken AS (
     SELECT pg_notify('awa_jobs_available', done.queue) FROM done
   )
   SELECT done.*, (SELECT count(*) FROM woken) AS woken FROM done`,
)

/**
 * Cancels job $1 with error JSON $2 unless it is already terminal; a running job's worker is told through
 * NOTIFY on awa_job_cancelled (payload: the id) so its handler's signal fires.
 */
export const cancelJobById = statement(
  "jobs_cancel_by_id",
  `WITH old AS (
     SELECT id, state AS previous_state FROM awa.jobs
     WHERE id = $1::bigint AND state NOT IN ('completed', 'failed', 'cancelled')
     FOR UPDATE
   ), done AS (
     UPDATE awa.jobs j SET state = 'cancelled', finalized_at = now(), errors = ${appendError("$2::text")}
     FROM old WHERE j.id = old.id
     RETURNING ${jobColumns}, old.previous_state
   ), told AS (
     SELECT pg_notify('awa_job_cancelled', done.id::text) FROM done WHERE done.previous_state IN ('running', 'waiting_external')
   )
   SELECT done.*, (SELECT count(*) FROM told) AS told FROM done`,
)

/**
 * Cancels the non-terminal job holding unique key $1 (hex) with error JSON $2, telling its worker when it
 * is running.
 */
export const cancelByUniqueKey = statement(
  "jobs_cancel_by_unique_key",
  `WITH old AS (
     SELECT id, state AS previous_state FROM awa.jobs
     WHERE unique_key = decode($1::text, 'hex') AND state = ANY (unique_states)
       AND state NOT IN ('completed', 'failed', 'cancelled')
     FOR UPDATE
   ), done AS (
     UPDATE awa.jobs j SET state = 'cancelled', finalized_at = now(), errors = ${appendError("$2::text")}
     FROM old WHERE j.id = old.id
     RETURNING ${jobColumns}, old.previous_state
   ), told AS (
     SELECT pg_notify('awa_job_cancelled', done.id::text) FROM done WHERE done.previous_state IN ('running', 'waiting_external')
   )
   SELECT done.*, (SELECT count(*) FROM told) AS told FROM done`,
)

/** Reads a job's state for error messages ($1 id). */
export const jobState = statement("jobs_state", `SELECT j.state FROM awa.jobs j WHERE j.id = $1::bigint`)

/**
 * Makes scheduled/retryable jobs available now, keeping their attempt counts (time control): only ids $1,
 * queue $2, kind $3 and jobs due within $4 ms (each NULL for any). Returns the ids, waking their queues.
 */
export const makeJobsDue = statement(
  "jobs_make_due",
  `WITH due AS (
     SELECT id FROM awa.jobs
     WHERE state IN ('scheduled', 'retryable')
       AND ($1::bigint[] IS NULL OR id = ANY ($1::bigint[])) AND ($2::text IS NULL OR queue = $2)
       AND ($3::text IS NULL OR kind = $3)
       AND ($4::bigint IS NULL OR run_at <= now() + $4::bigint * interval '1 millisecond')
     ORDER BY id
     FOR UPDATE
   ), made AS (
     UPDATE awa.jobs j SET state = 'available', run_at = least(j.run_at, now())
     FROM due WHERE j.id = due.id
     RETURNING j.id, j.queue
   ), woken AS (
     SELECT pg_notify('awa_jobs_available', m.queue) FROM (SELECT DISTINCT queue FROM made) m
   )
   SELECT made.id, (SELECT count(*) FROM woken) AS woken FROM made ORDER BY made.id`,
)

/** Deletes every job of queue $1 in any state (releasing unique keys); returns the count. */
export const deleteQueueJobs = statement(
  "jobs_delete_queue",
  `WITH gone AS (DELETE FROM awa.jobs j WHERE j.queue = $1 RETURNING 1)
   SELECT count(*)::integer AS deleted FROM gone`,
)
