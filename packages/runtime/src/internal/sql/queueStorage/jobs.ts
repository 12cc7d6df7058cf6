// Named statements on a queue-storage schema's job families (ready rows, deferred jobs, terminal facts,
// closures, receipts): enqueue, claim, the attempt writes and the job-level admin operations. The multi-step
// ones call the schema's helper functions (migrations/queue-storage), which lock lanes before drawing
// sequence values.
import type { SchemaSql } from "./schemaStatement.js"

/** The job read model's columns, as the canonical engine's admin reads return them. */
const jobColumns = `j.id, j.kind, j.queue, j.args, j.state, j.priority, j.attempt, j.max_attempts, j.run_lease,
  j.run_at, j.attempted_at, j.heartbeat_at, j.deadline_at, j.finalized_at, j.attempt_timeout_ms, j.errors, j.tags,
  j.metadata, encode(j.unique_key, 'hex') AS unique_key, j.unique_states, j.created_at`

/** The statements of one schema's job families. */
export const jobStatements = ({ s, statement }: SchemaSql) => ({
  /**
   * Inserts jobs from parallel arrays ($1 kind, $2 queue, $3 args JSON, $4 priority, $5 max_attempts, $6 run_at,
   * $7 delay ms, $8 timeout ms, $9 tags JSON, $10 metadata JSON, $11 unique key hex, $12 unique states literal):
   * one row per input in order, with the new id and state, or the holder of a unique key that was taken.
   * Prepared: a function call has nothing to plan by the arrays' size, so a generic plan saves planning on
   * every single-job insert.
   */
  enqueue: statement(
    "enqueue",
    `SELECT e.ord, e.id, e.state, e.run_at, e.existing_id, e.existing_state
     FROM ${s}.enqueue($1::text[], $2::text[], $3::text[], $4::smallint[], $5::integer[], $6::timestamptz[],
       $7::bigint[], $8::integer[], $9::text[], $10::text[], $11::text[], $12::text[]) e`,
  ),

  /**
   * The COPY target of the bulk insert path (text format, columns in this order); a statement trigger enqueues
   * the rows at the end of the COPY.
   */
  copySql: `COPY ${s}.copy_inbox (kind, queue, args, priority, max_attempts, run_at, attempt_timeout_ms, tags,
    metadata) FROM STDIN`,

  /** Claims up to $2 jobs of queue $1 with default timeout $3 ms, of kinds $4 (NULL for any). */
  claim: statement("claim", `SELECT * FROM ${s}.claim($1::text, $2::integer, $3::integer, $4::text[])`),

  /**
   * Completes attempts ($1 ids, $2 leases, $3 their ready slots as claim returned them, NULL where unknown);
   * returns the ids whose attempt was open.
   */
  complete: statement(
    "complete",
    `SELECT c.id FROM ${s}.complete_attempts($1::bigint[], $2::bigint[], $3::smallint[]) c`,
    { prepared: false },
  ),

  /**
   * Requeues attempts ($1 ids, $2 leases, $3 delay ms, $4 error JSON or NULL) with closure outcome $5; $6 true
   * consumes the attempt (retry), false gives it back (snooze, release). Returns the ids applied.
   */
  requeue: statement(
    "requeue",
    `SELECT r.id FROM ${s}.requeue_attempts($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text, $6::boolean) r`,
    { prepared: false },
  ),

  /** Ends attempts ($1 ids, $2 leases, $3 error JSON) as $4 (cancelled or failed); returns ids and DLQ flags. */
  finalize: statement(
    "finalize",
    `SELECT f.id, f.dlq FROM ${s}.finalize_attempts($1::bigint[], $2::bigint[], $3::text[], $4::text) f`,
    { prepared: false },
  ),

  /** Reads the closure outcome of attempts ($1 ids, $2 leases): tells an already-applied write from a stale one. */
  closures: statement(
    "closures",
    `SELECT c.id, c.run_lease, c.outcome FROM ${s}.closures c
     JOIN unnest($1::bigint[], $2::bigint[]) AS d(id, run_lease) ON c.id = d.id AND c.run_lease = d.run_lease
     WHERE c.id = ANY ($1::bigint[])
       -- A job purged since (purgeQueue, retention) is gone: its attempt is stale, as a deleted row is.
       AND NOT EXISTS (SELECT 1 FROM ${s}.done_entries p WHERE p.id = c.id AND p.state = 'purged')`,
    { prepared: false },
  ),

  /** Records heartbeats of attempts ($1 ids, $2 leases); returns the ids still open. */
  heartbeat: statement(
    "heartbeat",
    `SELECT h.id FROM ${s}.heartbeat_attempts($1::bigint[], $2::bigint[]) h`,
    { prepared: false },
  ),

  /** Promotes up to $1 due scheduled/retryable jobs; returns how many. */
  promote: statement("promote", `SELECT ${s}.promote_due($1::integer) AS promoted`),

  /** Finds up to $3 attempts to rescue: heartbeat older than $1 ms or deadline passed more than $2 ms ago. */
  findRescuable: statement(
    "find_rescuable",
    `SELECT * FROM ${s}.find_rescuable($1::bigint, $2::bigint, $3::integer)`,
  ),

  /** Reads one job ($1 id) from the read model. */
  getJob: statement("get_job", `SELECT ${jobColumns} FROM ${s}.job_rows($1::bigint) j`),

  /**
   * Lists jobs after cursor $5 (exclusive, ascending ids), filtered by queue $1, kind $2, states $3 and tag $4
   * (each NULL for any), at most $6 rows.
   */
  listJobsAsc: statement(
    "list_jobs_asc",
    `SELECT ${jobColumns} FROM ${s}.job_rows(NULL) j
     WHERE ($1::text IS NULL OR j.queue = $1) AND ($2::text IS NULL OR j.kind = $2)
       AND ($3::text[] IS NULL OR j.state = ANY ($3::text[]))
       AND ($4::text IS NULL OR $4 = ANY (j.tags)) AND ($5::bigint IS NULL OR j.id > $5)
     ORDER BY j.id LIMIT $6`,
  ),

  /** Like `listJobsAsc`, newest id first, before cursor $5 (exclusive). */
  listJobsDesc: statement(
    "list_jobs_desc",
    `SELECT ${jobColumns} FROM ${s}.job_rows(NULL) j
     WHERE ($1::text IS NULL OR j.queue = $1) AND ($2::text IS NULL OR j.kind = $2)
       AND ($3::text[] IS NULL OR j.state = ANY ($3::text[]))
       AND ($4::text IS NULL OR $4 = ANY (j.tags)) AND ($5::bigint IS NULL OR j.id < $5)
     ORDER BY j.id DESC LIMIT $6`,
  ),

  /** Pending (available) jobs per queue: ready rows past their lane's claim cursor, not tombstoned. */
  availableDepth: statement(
    "available_depth",
    `SELECT l.queue, count(*)::bigint AS count
     FROM ${s}.lanes l
     CROSS JOIN LATERAL (SELECT ${s}.lane_cursor(l.lane_id) AS c) k
     JOIN ${s}.ready_entries r ON r.lane_id = l.lane_id AND r.lane_seq > k.c
     WHERE NOT EXISTS (SELECT 1 FROM ${s}.ready_tombstones t
                       WHERE t.ready_slot = r.ready_slot AND t.id = r.id AND t.lane_seq = r.lane_seq)
     GROUP BY l.queue`,
  ),

  /** Running jobs per queue: receipts whose attempts have no closure (bounded by the claim ring). */
  runningByQueue: statement(
    "running_by_queue",
    `SELECT l.queue, count(*)::bigint AS count
     FROM ${s}.claim_batches cb
     CROSS JOIN LATERAL unnest(cb.ids, cb.leases, cb.ready_slots) AS u(id, lease, rslot)
     JOIN ${s}.lanes l ON l.lane_id = cb.lane_id
     WHERE NOT EXISTS (SELECT 1 FROM ${s}.closures c WHERE c.id = u.id AND c.run_lease = u.lease AND c.ready_slot = u.rslot)
     GROUP BY l.queue`,
  ),

  /** Scheduled and retryable jobs per queue and state. */
  deferredByQueue: statement(
    "deferred_by_queue",
    `SELECT f.queue, f.state, count(*)::bigint AS count FROM ${s}.deferred_jobs f GROUP BY f.queue, f.state`,
  ),

  /** Retries job $1 now with a fresh attempt count; false when it is missing or in another state. */
  retryJob: statement("retry_job", `SELECT ${s}.retry_job($1::bigint) AS done`),

  /** Cancels job $1 with error JSON $2 unless terminal; false when it is missing or terminal. */
  cancelJob: statement("cancel_job", `SELECT ${s}.cancel_job($1::bigint, $2::text) AS done`),

  /** The job holding unique key $1 (hex), when one does. */
  uniqueHolder: statement(
    "unique_holder",
    `SELECT u.job_id AS id FROM ${s}.unique_claims u WHERE u.unique_key = decode($1::text, 'hex')`,
  ),

  /** Makes scheduled/retryable jobs available now: ids $1, queue $2, kind $3, due within $4 ms (NULL = any). */
  makeDue: statement(
    "make_due",
    `SELECT d.id FROM ${s}.make_due($1::bigint[], $2::text, $3::text, $4::bigint) d ORDER BY d.id`,
    { prepared: false },
  ),

  /** Deletes every job and DLQ entry of queue $1; returns both counts. */
  purgeQueue: statement("purge_queue", `SELECT p.jobs, p.dead_lettered FROM ${s}.purge_queue($1::text) p`),
})
