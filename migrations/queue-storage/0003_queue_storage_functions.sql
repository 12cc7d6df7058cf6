-- Queue-storage helper functions for schema {{schema}}: ring slots, lane locks and cursors, enqueue, claim, the job read model, and the multi-step writes that must lock lanes before taking sequence values.
--
-- Visibility: before drawing lane_seq values from event_seq for new ready rows of a lane, a transaction
-- registers itself as in flight on the lane: it draws a reservation r from event_seq and takes the
-- transaction-scoped advisory lock (lane_space(lane), low 32 bits of r), held to commit or rollback (once
-- per lane and transaction). Producers never wait for each other. A claimer reads event_seq's last value H,
-- then the reservations in flight on the lane (pg_locks, other backends), and reads the lane only up to
-- B = least(H, smallest reservation in flight). Every row with lane_seq <= B is settled: it was drawn before H
-- was read, by a transaction that had registered before drawing it, and that transaction was not in flight
-- when the locks were read (else B would be below its reservation, and so below its rows); a snapshot taken
-- afterwards therefore sees every row up to B that will ever exist, and a claim may move its cursor past
-- everything below the rows it takes without skipping anything. (event_seq must keep CACHE 1, so that its
-- last value is the newest value handed out.)

-- The queue ring's current slot (newest generation).
CREATE FUNCTION {{schema}}.current_queue_slot() RETURNS smallint
LANGUAGE sql STABLE AS $$
  SELECT slot FROM {{schema}}.queue_ring_rotations ORDER BY generation DESC LIMIT 1
$$;

-- The claim ring's current slot (newest generation).
CREATE FUNCTION {{schema}}.current_claim_slot() RETURNS smallint
LANGUAGE sql STABLE AS $$
  SELECT slot FROM {{schema}}.claim_ring_rotations ORDER BY generation DESC LIMIT 1
$$;

-- Advisory lock namespaces of this schema: 1 = (unused), 2 = lane claim lock, 3 = attempt, 4 = job admin, 5 = ring
-- maintenance; lane_space gives each lane its own namespace for in-flight reservations.
CREATE FUNCTION {{schema}}.lock_space(p_kind integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT hashtext('awa.queue_storage/' || '{{schema}}' || '/' || p_kind::text)
$$;

-- A lane's claim cursor: the highest lane_seq any committed claim took (or the floor kept by claim prune).
CREATE FUNCTION {{schema}}.lane_cursor(p_lane integer) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT greatest(
    (SELECT l.claimed_floor FROM {{schema}}.lanes l WHERE l.lane_id = p_lane),
    (SELECT max(cb.max_seq) FROM {{schema}}.claim_batches cb WHERE cb.lane_id = p_lane),
    0)
$$;

-- The advisory namespace of lane p_lane's in-flight reservations (two lanes may share one: that only makes a
-- claimer more careful).
CREATE FUNCTION {{schema}}.lane_space(p_lane integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT hashtext('awa.queue_storage/' || '{{schema}}' || '/lane/' || p_lane::text)
$$;

-- Creates missing lanes for (queue, priority) pairs and registers this transaction as in flight on each (see
-- the top of this file), in lane id order, until commit. Call before drawing lane_seq values for new ready
-- rows. The lanes already registered in this transaction are remembered in a transaction-local setting.
CREATE FUNCTION {{schema}}.lock_lanes(p_queues text[], p_priorities smallint[]) RETURNS void
LANGUAGE plpgsql
-- Generic plans: these run on every enqueue or claim, and planning over the ring partitions costs more than
-- the statements themselves.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_held text := coalesce(current_setting('awa_qs.lanes_in_flight', true), '');
  v_lane integer;
  v_mark text;
  v_res bigint;
BEGIN
  INSERT INTO {{schema}}.lanes (queue, priority)
  SELECT DISTINCT i.q, i.p FROM unnest(p_queues, p_priorities) AS i(q, p)
  WHERE i.q IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.lanes l WHERE l.queue = i.q AND l.priority = i.p)
  ORDER BY 1, 2
  ON CONFLICT (queue, priority) DO NOTHING;
  FOR v_lane IN
    SELECT DISTINCT l.lane_id FROM {{schema}}.lanes l
    JOIN unnest(p_queues, p_priorities) AS i(q, p) ON l.queue = i.q AND l.priority = i.p
    ORDER BY l.lane_id
  LOOP
    v_mark := '{{schema}}/' || v_lane::text || ',';
    CONTINUE WHEN strpos(v_held, ',' || v_mark) > 0;
    v_res := nextval('{{schema}}.event_seq');
    PERFORM pg_advisory_xact_lock({{schema}}.lane_space(v_lane),
      ((v_res % 4294967296) - CASE WHEN v_res % 4294967296 >= 2147483648 THEN 4294967296 ELSE 0 END)::integer);
    v_held := v_held || ',' || v_mark;
    PERFORM set_config('awa_qs.lanes_in_flight', v_held, true);
  END LOOP;
END
$$;

-- The highest lane_seq of lane p_lane up to which every row is settled (see the top of this file): read the
-- lane up to here, in a snapshot taken after this call.
CREATE FUNCTION {{schema}}.lane_settled_upto(p_lane integer) RETURNS bigint
LANGUAGE plpgsql
-- Generic plans: these run on every enqueue or claim, and planning over the ring partitions costs more than
-- the statements themselves.
SET plan_cache_mode = force_generic_plan VOLATILE AS $$
DECLARE
  v_high bigint := coalesce(pg_sequence_last_value('{{schema}}.event_seq'), 0);
  v_low bigint;
BEGIN
  -- A reservation is known by its low 32 bits; it lies within 2^32 below the last value read just before.
  SELECT min(v_high - ((v_high - k.objid::bigint) % 4294967296 + 4294967296) % 4294967296) INTO v_low
  FROM pg_catalog.pg_locks k
  WHERE k.locktype = 'advisory' AND k.objsubid = 2
    AND k.classid = ({{schema}}.lane_space(p_lane)::bigint & 4294967295)::oid
    AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
    AND k.pid <> pg_backend_pid();
  RETURN least(v_high, v_low);
END
$$;

-- Takes lane p_lane's claim lock for the rest of the transaction, waiting up to p_wait_ms for the claimer (or
-- the cancel, purge or prune) holding it; false when it is still held then.
CREATE FUNCTION {{schema}}.lock_lane_claim(p_lane integer, p_wait_ms integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_old text;
BEGIN
  IF pg_try_advisory_xact_lock({{schema}}.lock_space(2), p_lane) THEN RETURN true; END IF;
  v_old := current_setting('lock_timeout');
  BEGIN
    PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
    PERFORM pg_advisory_xact_lock({{schema}}.lock_space(2), p_lane);
    PERFORM set_config('lock_timeout', v_old, true);
  EXCEPTION WHEN lock_not_available THEN
    RETURN false;
  END;
  RETURN true;
END
$$;

-- Appends a JSON error record (with the database clock) to an errors array.
CREATE FUNCTION {{schema}}.append_error(p_errors jsonb, p_error text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN p_error IS NULL THEN p_errors ELSE
    coalesce(p_errors, '[]'::jsonb) || jsonb_build_array(p_error::jsonb || jsonb_build_object('at',
      to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) END
$$;

-- Adds (or with a negative delta removes) terminal jobs to the live counters, in sorted key order so that
-- concurrent batches with overlapping keys cannot deadlock.
CREATE FUNCTION {{schema}}.count_terminal(p_slots smallint[], p_queues text[], p_priorities smallint[], p_states text[], p_deltas bigint[])
RETURNS void
-- PL/pgSQL, so its statement is planned once per session rather than at every call.
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  INSERT INTO {{schema}}.queue_terminal_live_counts AS c (ready_slot, queue, priority, state, count)
  SELECT i.s, i.q, i.p, i.st, sum(i.d) FROM unnest(p_slots, p_queues, p_priorities, p_states, p_deltas) AS i(s, q, p, st, d)
  WHERE i.st IN ('completed', 'failed', 'cancelled')
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (ready_slot, queue, priority, state) DO UPDATE SET count = c.count + excluded.count;
END
$$;

-- The read model: every stored job (or only job p_id) in the canonical column set, derived from its newest
-- fact. A ready row is available while past its lane's claim cursor, running while its attempt has no
-- closure; a job whose newest fact is a closed attempt, a tombstone or a purge is gone.
CREATE FUNCTION {{schema}}.job_rows(p_id bigint)
RETURNS TABLE (
  id bigint, kind text, queue text, args jsonb, state text, priority smallint, attempt integer,
  max_attempts integer, run_lease bigint, run_at timestamptz, attempted_at timestamptz,
  heartbeat_at timestamptz, deadline_at timestamptz, finalized_at timestamptz, attempt_timeout_ms integer,
  errors jsonb, tags text[], metadata jsonb, unique_key bytea, unique_states text[], created_at timestamptz,
  fact text, ready_slot smallint, lane_id integer, lane_seq bigint
)
LANGUAGE sql STABLE
-- The planner sizes this by the whole ring; JIT compiling it costs seconds and saves nothing for these reads.
SET jit = off
AS $$
  WITH facts AS (
    SELECT r.id, r.lane_seq AS seq, 'r'::text AS fam, r.ready_slot, r.lane_seq AS body_seq, NULL::text AS state,
      NULL::integer AS attempt, r.run_lease, NULL::jsonb AS errors, NULL::timestamptz AS attempted_at,
      NULL::timestamptz AS finalized_at
    FROM {{schema}}.ready_entries r WHERE p_id IS NULL OR r.id = p_id
    UNION ALL
    SELECT d.id, d.seq, 'd', d.ready_slot, d.body_seq, d.state, d.attempt, d.run_lease, d.errors, d.attempted_at,
      d.finalized_at
    FROM {{schema}}.done_entries d WHERE p_id IS NULL OR d.id = p_id
    UNION ALL
    SELECT u.id, c.seq, 'c', c.ready_slot, NULL, 'completed', NULL, u.lease, NULL, NULL, c.completed_at
    FROM {{schema}}.completion_batches c CROSS JOIN LATERAL unnest(c.ids, c.leases) AS u(id, lease)
    WHERE (p_id IS NULL OR p_id = ANY (c.ids)) AND (p_id IS NULL OR u.id = p_id)
    UNION ALL
    SELECT f.id, f.seq, 'f', NULL, NULL, f.state, f.attempt, f.run_lease, f.errors, f.attempted_at, NULL
    FROM {{schema}}.deferred_jobs f WHERE p_id IS NULL OR f.id = p_id
  ), latest AS (
    SELECT DISTINCT ON (facts.id) facts.* FROM facts ORDER BY facts.id, facts.seq DESC
  ), ready AS (
    SELECT l.fam, r.*, l.state AS fact_state, l.attempt AS fact_attempt, l.run_lease AS fact_lease,
      l.errors AS fact_errors, l.attempted_at AS fact_attempted_at, l.finalized_at AS fact_finalized_at,
      coalesce(tb.claimed = false, false) AS tombstoned,
      (l.fam = 'r' AND tb.claimed IS NULL AND r.lane_seq > {{schema}}.lane_cursor(r.lane_id)) AS pending
    FROM latest l
    CROSS JOIN LATERAL (
      SELECT re.* FROM {{schema}}.ready_entries re
      WHERE re.ready_slot = l.ready_slot AND re.id = l.id
        AND ((l.fam IN ('r', 'd') AND re.lane_seq = l.body_seq)
          OR (l.fam = 'c' AND re.run_lease = l.run_lease - 1 AND re.lane_seq < l.seq))
      ORDER BY re.lane_seq DESC LIMIT 1
    ) r
    LEFT JOIN {{schema}}.ready_tombstones tb ON tb.ready_slot = r.ready_slot AND tb.id = r.id AND tb.lane_seq = r.lane_seq
    WHERE l.fam <> 'f'
  ), ready_state AS (
    SELECT x.*, rc.claimed_at, rc.default_timeout_ms,
      EXISTS (SELECT 1 FROM {{schema}}.closures c
              WHERE c.id = x.id AND c.run_lease = x.run_lease + 1 AND c.ready_slot = x.ready_slot) AS closed
    FROM ready x
    LEFT JOIN LATERAL (
      SELECT cb.claimed_at, cb.default_timeout_ms FROM {{schema}}.claim_batches cb
      WHERE x.fam IN ('r', 'c') AND NOT x.pending AND cb.lane_id = x.lane_id
        AND (cb.max_seq >= x.lane_seq OR cb.max_seq = 0) AND cb.leases[array_position(cb.ids, x.id)] = x.run_lease + 1
      ORDER BY cb.max_seq LIMIT 1
    ) rc ON true
  )
  SELECT s.id, s.kind, s.queue, s.args,
    CASE WHEN s.fam = 'r' THEN (CASE WHEN s.pending THEN 'available' ELSE 'running' END) ELSE s.fact_state END,
    s.priority,
    CASE WHEN s.fam = 'r' THEN s.attempt + (CASE WHEN s.pending THEN 0 ELSE 1 END)
         WHEN s.fam = 'c' THEN s.attempt + 1 ELSE s.fact_attempt END,
    s.max_attempts,
    CASE WHEN s.fam = 'r' THEN s.run_lease + (CASE WHEN s.pending THEN 0 ELSE 1 END) ELSE s.fact_lease END,
    s.run_at,
    CASE WHEN s.fam = 'd' THEN s.fact_attempted_at ELSE s.claimed_at END,
    CASE WHEN s.fam = 'r' AND NOT s.pending THEN
      coalesce((SELECT a.heartbeat_at FROM {{schema}}.attempt_state a WHERE a.id = s.id AND a.run_lease = s.run_lease + 1), s.claimed_at)
    END,
    CASE WHEN s.fam = 'r' AND NOT s.pending THEN
      s.claimed_at + coalesce(s.attempt_timeout_ms, s.default_timeout_ms) * interval '1 millisecond'
    END,
    s.fact_finalized_at,
    s.attempt_timeout_ms,
    CASE WHEN s.fam = 'd' THEN s.fact_errors ELSE s.errors END,
    s.tags, s.metadata, s.unique_key, s.unique_states, s.created_at,
    s.fam, s.ready_slot, s.lane_id, s.lane_seq
  FROM ready_state s
  WHERE (s.fam <> 'r' OR (NOT s.tombstoned AND (s.pending OR NOT s.closed))) AND coalesce(s.fact_state, '') <> 'purged'
  UNION ALL
  SELECT f.id, f.kind, f.queue, f.args, f.state, f.priority, f.attempt, f.max_attempts, f.run_lease, f.run_at,
    f.attempted_at, NULL, NULL, NULL, f.attempt_timeout_ms, f.errors, f.tags, f.metadata, f.unique_key,
    f.unique_states, f.created_at, 'f', NULL, NULL, NULL
  FROM latest l JOIN {{schema}}.deferred_jobs f ON f.id = l.id
  WHERE l.fam = 'f'
$$;

-- Inserts jobs from parallel arrays (see the runtime's statement for the columns). Unique rows take their key
-- in unique_claims first; a row whose key is held is not inserted and reports the holder (existing_id NULL
-- when the holder let go meanwhile: the caller tries again). Immediate rows lock their lanes, then get a
-- lane_seq and land in the current queue-ring slot; future rows go to deferred_jobs. Wakes workers.
CREATE FUNCTION {{schema}}.enqueue(
  p_kinds text[], p_queues text[], p_args text[], p_priorities smallint[], p_max_attempts integer[],
  p_run_ats timestamptz[], p_delays bigint[], p_timeouts integer[], p_tags text[], p_metadata text[],
  p_unique_keys text[], p_unique_states text[]
) RETURNS TABLE (ord bigint, id bigint, state text, run_at timestamptz, existing_id bigint, existing_state text)
LANGUAGE plpgsql
-- Generic plans: these run on every enqueue or claim, and planning over the ring partitions costs more than
-- the statements themselves.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_n integer := cardinality(p_kinds);
  v_ids bigint[];
  v_run_ats timestamptz[];
  v_won boolean[];
  v_now timestamptz := now();
  -- A job is due when its run time is not ahead of the clock at insert (not the transaction's start).
  v_clock timestamptz := clock_timestamp();
  v_slot smallint;
BEGIN
  v_ids := ARRAY(SELECT {{schema}}.next_job_id() FROM generate_series(1, v_n));
  v_run_ats := ARRAY(
    SELECT coalesce(i.r, v_now + i.d * interval '1 millisecond', v_now)
    FROM unnest(p_run_ats, p_delays) WITH ORDINALITY AS i(r, d, o) ORDER BY i.o);
  v_won := array_fill(true, ARRAY[v_n]);
  IF EXISTS (SELECT 1 FROM unnest(p_unique_keys) k WHERE k IS NOT NULL) THEN
    WITH taken AS (
      INSERT INTO {{schema}}.unique_claims (unique_key, job_id)
      SELECT decode(i.k, 'hex'), v_ids[i.o] FROM unnest(p_unique_keys) WITH ORDINALITY AS i(k, o)
      WHERE i.k IS NOT NULL ORDER BY i.o
      ON CONFLICT (unique_key) DO NOTHING
      RETURNING job_id
    )
    SELECT ARRAY(
      SELECT p_unique_keys[o] IS NULL OR v_ids[o] IN (SELECT job_id FROM taken)
      FROM generate_series(1, v_n) AS o ORDER BY o)
    INTO v_won;
  END IF;
  PERFORM {{schema}}.lock_lanes(array_agg(p_queues[o]), array_agg(p_priorities[o]))
  FROM generate_series(1, v_n) AS o WHERE v_won[o] AND v_run_ats[o] <= v_clock;
  v_slot := {{schema}}.current_queue_slot();
  INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
    max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, created_at)
  SELECT v_slot, v_ids[o], l.lane_id, nextval('{{schema}}.event_seq'), p_kinds[o], p_queues[o], p_priorities[o],
    p_args[o]::jsonb, 0, p_max_attempts[o], 0, v_run_ats[o], p_timeouts[o],
    CASE WHEN p_tags[o] IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(p_tags[o]::jsonb)) END,
    coalesce(p_metadata[o]::jsonb, '{}'::jsonb), NULL, decode(p_unique_keys[o], 'hex'), p_unique_states[o]::text[], v_now
  FROM generate_series(1, v_n) AS o
  JOIN {{schema}}.lanes l ON l.queue = p_queues[o] AND l.priority = p_priorities[o]
  WHERE v_won[o] AND v_run_ats[o] <= v_clock
  ORDER BY o;
  INSERT INTO {{schema}}.deferred_jobs (id, seq, state, kind, queue, priority, args, attempt, max_attempts, run_lease,
    run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, attempted_at, created_at)
  SELECT v_ids[o], nextval('{{schema}}.event_seq'), 'scheduled', p_kinds[o], p_queues[o], p_priorities[o],
    p_args[o]::jsonb, 0, p_max_attempts[o], 0, v_run_ats[o], p_timeouts[o],
    CASE WHEN p_tags[o] IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(p_tags[o]::jsonb)) END,
    coalesce(p_metadata[o]::jsonb, '{}'::jsonb), NULL, decode(p_unique_keys[o], 'hex'), p_unique_states[o]::text[],
    NULL, v_now
  FROM generate_series(1, v_n) AS o
  WHERE v_won[o] AND v_run_ats[o] > v_clock
  ORDER BY o;
  PERFORM pg_notify('awa_jobs_available', q.queue)
  FROM (SELECT DISTINCT p_queues[o] AS queue FROM generate_series(1, v_n) AS o
        WHERE v_won[o] AND v_run_ats[o] <= v_clock) q;
  IF NOT (false = ANY (v_won)) THEN
    RETURN QUERY
    SELECT o::bigint, v_ids[o], CASE WHEN v_run_ats[o] <= v_clock THEN 'available' ELSE 'scheduled' END, v_run_ats[o],
      NULL::bigint, NULL::text
    FROM generate_series(1, v_n) AS o ORDER BY o;
    RETURN;
  END IF;
  -- Some keys were taken: report each holder and its state (the read model, only on this path).
  RETURN QUERY
  SELECT o::bigint,
    CASE WHEN v_won[o] THEN v_ids[o] END,
    CASE WHEN NOT v_won[o] THEN NULL WHEN v_run_ats[o] <= v_clock THEN 'available' ELSE 'scheduled' END,
    v_run_ats[o],
    h.job_id,
    CASE WHEN h.job_id IS NOT NULL THEN (SELECT j.state FROM {{schema}}.job_rows(h.job_id) j) END
  FROM generate_series(1, v_n) AS o
  LEFT JOIN {{schema}}.unique_claims h ON NOT v_won[o] AND h.unique_key = decode(p_unique_keys[o], 'hex')
  ORDER BY o;
END
$$;

-- The COPY path: the rows a COPY writes to copy_inbox (unlogged, nothing reads them) are enqueued at the end
-- of the statement, set-based, from its transition table: the lanes of due rows are registered as in flight,
-- each due row gets a job id and a lane_seq (in COPY order) in the current queue-ring slot, the others go to
-- deferred_jobs, and each queue's workers are woken once. Maintenance truncates the inbox (prune_copy_inbox).
CREATE FUNCTION {{schema}}.copy_inbox_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  -- A job is due when its run time is not ahead of the clock once the COPY has read every row.
  v_clock timestamptz := clock_timestamp();
  v_slot smallint;
BEGIN
  PERFORM {{schema}}.lock_lanes(array_agg(x.queue), array_agg(x.priority))
  FROM (SELECT DISTINCT i.queue, i.priority FROM copied i WHERE i.run_at <= v_clock) x;
  v_slot := {{schema}}.current_queue_slot();
  INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
    max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, created_at)
  SELECT v_slot, {{schema}}.next_job_id(),
    (SELECT l.lane_id FROM {{schema}}.lanes l WHERE l.queue = i.queue AND l.priority = i.priority),
    nextval('{{schema}}.event_seq'), i.kind, i.queue, i.priority, i.args::jsonb, 0, i.max_attempts, 0, i.run_at,
    i.attempt_timeout_ms, i.tags, i.metadata::jsonb, now()
  FROM copied i WHERE i.run_at <= v_clock;
  INSERT INTO {{schema}}.deferred_jobs (id, seq, state, kind, queue, priority, args, attempt, max_attempts,
    run_lease, run_at, attempt_timeout_ms, tags, metadata, created_at)
  SELECT {{schema}}.next_job_id(), nextval('{{schema}}.event_seq'), 'scheduled', i.kind, i.queue, i.priority,
    i.args::jsonb, 0, i.max_attempts, 0, i.run_at, i.attempt_timeout_ms, i.tags, i.metadata::jsonb, now()
  FROM copied i WHERE i.run_at > v_clock;
  PERFORM pg_notify('awa_jobs_available', x.queue)
  FROM (SELECT DISTINCT i.queue FROM copied i WHERE i.run_at <= v_clock ORDER BY 1) x;
  RETURN NULL;
END
$$;

-- Nothing reads the inbox's rows after their statement: they need no WAL and need not survive a crash.
ALTER TABLE {{schema}}.copy_inbox SET UNLOGGED;
COMMENT ON TABLE {{schema}}.copy_inbox IS 'awa queue-storage COPY entry point; each COPY enqueues its rows at the end of the statement and nothing reads them again. Reclaim kind: ring (unlogged, truncated by maintenance; bounded by COPY traffic between maintenance runs).';

CREATE TRIGGER copy_inbox_enqueue AFTER INSERT ON {{schema}}.copy_inbox
  REFERENCING NEW TABLE AS copied FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.copy_inbox_enqueue();

-- Empties copy_inbox when it holds rows, unless a COPY holds it for longer than p_lock_timeout_ms (then it is
-- left for the next run). Every row there was enqueued by its own statement already. Returns whether it did.
CREATE FUNCTION {{schema}}.prune_copy_inbox(p_lock_timeout_ms integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_old text := current_setting('lock_timeout');
BEGIN
  IF NOT EXISTS (SELECT 1 FROM {{schema}}.copy_inbox) THEN RETURN false; END IF;
  BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    LOCK TABLE {{schema}}.copy_inbox IN ACCESS EXCLUSIVE MODE;
    PERFORM set_config('lock_timeout', v_old, true);
    TRUNCATE {{schema}}.copy_inbox;
  EXCEPTION WHEN lock_not_available THEN
    RETURN false;
  END;
  RETURN true;
END
$$;

-- Claims up to p_limit jobs of a queue (nothing when it is paused), lanes in priority order. Each lane's claim
-- lock is taken waiting briefly for another claimer (a lane still held after that is skipped), then the lane is
-- read in a fresh snapshot up to its settled bound (see the top of this file), so its cursor reflects every
-- committed claim and no row below the rows taken can still appear. One receipt per lane; no per-job row is written.
-- Within a lane, jobs are taken by run time, then lane order, among the next p_limit + 100 pending rows: the
-- cursor moves over the leading rows taken, and a row taken ahead of one left behind (an earlier run time,
-- or with p_kinds, the kinds asked for) gets a claimed tombstone and goes in a receipt that leaves the cursor
-- alone, so the rows left behind keep their place.
CREATE FUNCTION {{schema}}.claim(p_queue text, p_limit integer, p_default_timeout_ms integer, p_kinds text[])
RETURNS TABLE (id bigint, kind text, queue text, args jsonb, priority smallint, attempt integer,
  max_attempts integer, run_lease bigint, run_at double precision, attempted_at double precision,
  deadline_at double precision, attempt_timeout_ms integer, tags text[], metadata jsonb, created_at double precision)
LANGUAGE plpgsql
-- Generic plans: these run on every enqueue or claim, and planning over the ring partitions costs more than
-- the statements themselves.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_lane integer;
  v_cursor bigint;
  v_high bigint;
  v_left integer := p_limit;
  v_got integer;
  v_now timestamptz := now();
  v_cslot smallint;
BEGIN
  -- Each lane is read after its claim lock in a fresh snapshot; a transaction-wide snapshot would not see
  -- claims committed since it began, and could hand the same job out twice.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'awa: a queue-storage claim cannot run in a % transaction',
      upper(current_setting('transaction_isolation'))
      USING ERRCODE = '25000',
        DETAIL = 'A claim reads each lane in a fresh snapshot after taking its lock; under a transaction-wide snapshot it could miss claims committed meanwhile and hand a job out twice.',
        HINT = 'Claim in its own transaction, or in a READ COMMITTED one (the default).';
  END IF;
  IF p_limit <= 0 OR EXISTS (SELECT 1 FROM {{schema}}.queue_settings q WHERE q.name = p_queue AND q.paused) THEN
    RETURN;
  END IF;
  FOR v_lane IN SELECT l.lane_id FROM {{schema}}.lanes l WHERE l.queue = p_queue ORDER BY l.priority LOOP
    EXIT WHEN v_left <= 0;
    CONTINUE WHEN NOT {{schema}}.lock_lane_claim(v_lane, 100);
    v_high := {{schema}}.lane_settled_upto(v_lane);
    v_cursor := {{schema}}.lane_cursor(v_lane);
    v_cslot := {{schema}}.current_claim_slot();
    RETURN QUERY
    WITH win AS (
      SELECT r.*, row_number() OVER (ORDER BY r.lane_seq) AS wn FROM (
        SELECT r0.* FROM {{schema}}.ready_entries r0
        WHERE r0.lane_id = v_lane AND r0.lane_seq > v_cursor AND r0.lane_seq <= v_high
          AND NOT EXISTS (SELECT 1 FROM {{schema}}.ready_tombstones t
                          WHERE t.ready_slot = r0.ready_slot AND t.id = r0.id AND t.lane_seq = r0.lane_seq)
        ORDER BY r0.lane_seq
        LIMIT v_left + 100
      ) r
    ), picked AS (
      SELECT w.* FROM win w
      WHERE p_kinds IS NULL OR w.kind = ANY (p_kinds)
      ORDER BY w.run_at, w.lane_seq
      LIMIT v_left
    ), prefix AS (
      -- The cursor moves over the leading window rows that are all picked; picked rows after the first one left
      -- behind are claimed out of lane order.
      SELECT coalesce(max(w.lane_seq), 0) AS upto FROM win w
      WHERE w.wn < coalesce((SELECT min(w2.wn) FROM win w2 WHERE w2.lane_seq NOT IN (SELECT p.lane_seq FROM picked p)),
                            (SELECT count(*) + 1 FROM win))
    ), receipt AS (
      INSERT INTO {{schema}}.claim_batches (claim_slot, lane_id, max_seq, claimed_at, default_timeout_ms, ids, leases,
        ready_slots, timeouts)
      SELECT v_cslot, v_lane, CASE WHEN g.in_order THEN (SELECT upto FROM prefix) ELSE 0 END, v_now, p_default_timeout_ms,
        array_agg(g.id ORDER BY g.lane_seq), array_agg(g.run_lease + 1 ORDER BY g.lane_seq),
        array_agg(g.ready_slot ORDER BY g.lane_seq), array_agg(g.attempt_timeout_ms ORDER BY g.lane_seq)
      FROM (SELECT p.*, p.lane_seq <= (SELECT upto FROM prefix) AS in_order FROM picked p) g
      GROUP BY g.in_order
      RETURNING 1
    ), out_of_order AS (
      INSERT INTO {{schema}}.ready_tombstones (ready_slot, id, lane_seq, claimed)
      SELECT p.ready_slot, p.id, p.lane_seq, true FROM picked p WHERE p.lane_seq > (SELECT upto FROM prefix)
      RETURNING 1
    )
    SELECT p.id, p.kind, p.queue, p.args, p.priority, p.attempt + 1, p.max_attempts, p.run_lease + 1,
      date_part('epoch', p.run_at) * 1000, date_part('epoch', v_now) * 1000,
      date_part('epoch', v_now + coalesce(p.attempt_timeout_ms, p_default_timeout_ms) * interval '1 millisecond') * 1000,
      p.attempt_timeout_ms, p.tags, p.metadata, date_part('epoch', p.created_at) * 1000
    FROM picked p
    WHERE (SELECT count(*) FROM receipt) >= 0 AND (SELECT count(*) FROM out_of_order) >= 0
    ORDER BY p.run_at, p.lane_seq;
    GET DIAGNOSTICS v_got = ROW_COUNT;
    v_left := v_left - v_got;
  END LOOP;
END
$$;

-- The claimed ready rows of attempts (p_ids, p_leases): the row with lease - 1 that a claim took (behind its
-- lane's cursor and not tombstoned, or tombstoned as claimed out of order). Whether the attempt is still open is decided by inserting its closure.
CREATE FUNCTION {{schema}}.attempt_rows(p_ids bigint[], p_leases bigint[])
RETURNS SETOF {{schema}}.ready_entries
LANGUAGE sql STABLE AS $$
  WITH cand AS MATERIALIZED (
    -- One index probe per attempt (OFFSET 0 keeps the planner from turning this into a scan of the ring,
    -- which it prefers once the slot holds a long history).
    SELECT r.* FROM unnest(p_ids, p_leases) AS d(id, run_lease)
    CROSS JOIN LATERAL (
      SELECT r0.* FROM {{schema}}.ready_entries r0 WHERE r0.id = d.id AND r0.run_lease = d.run_lease - 1 OFFSET 0
    ) r
  ), cursors AS MATERIALIZED (
    -- One cursor read per lane, not per attempt.
    SELECT x.lane_id, {{schema}}.lane_cursor(x.lane_id) AS upto FROM (SELECT DISTINCT lane_id FROM cand) x
  )
  SELECT c.* FROM cand c
  JOIN cursors k ON k.lane_id = c.lane_id
  LEFT JOIN {{schema}}.ready_tombstones t ON t.ready_slot = c.ready_slot AND t.id = c.id AND t.lane_seq = c.lane_seq
  WHERE t.claimed OR (t.id IS NULL AND c.lane_seq <= k.upto)
$$;


-- Ends open attempts whose job goes back to waiting: a deferred row when the delay is positive, else a fresh
-- ready row. Retry (p_consume: the attempt counts, the error p_errors is recorded, deferred as retryable),
-- snooze and release (the attempt is given back, deferred as scheduled). Returns the ids whose attempt was
-- still open; the others were closed by someone else first (the closure's unique index decides).
CREATE FUNCTION {{schema}}.requeue_attempts(p_ids bigint[], p_leases bigint[], p_delays bigint[], p_errors text[],
  p_outcome text, p_consume boolean)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_slot smallint;
BEGIN
  PERFORM {{schema}}.lock_lanes(array_agg(r.queue), array_agg(r.priority))
  FROM {{schema}}.attempt_rows(p_ids, p_leases) r
  JOIN unnest(p_ids, p_delays) AS d(id, delay_ms) ON d.id = r.id
  WHERE d.delay_ms <= 0;
  v_slot := {{schema}}.current_queue_slot();
  RETURN QUERY
  WITH d AS (
    SELECT * FROM unnest(p_ids, p_leases, p_delays, p_errors) AS d(id, run_lease, delay_ms, error)
  ), target AS (
    SELECT r.*, d.delay_ms, d.error, d.run_lease AS new_lease
    FROM {{schema}}.attempt_rows(p_ids, p_leases) r JOIN d ON d.id = r.id AND d.run_lease = r.run_lease + 1
  ), closed AS (
    INSERT INTO {{schema}}.closures AS c (ready_slot, id, run_lease, outcome, closed_at)
    SELECT t.ready_slot, t.id, t.new_lease, p_outcome, now() FROM target t ORDER BY t.id
    ON CONFLICT DO NOTHING
    RETURNING c.id, c.run_lease
  ), winners AS (
    SELECT t.* FROM target t JOIN closed c ON c.id = t.id AND c.run_lease = t.new_lease
  ), deferred AS (
    INSERT INTO {{schema}}.deferred_jobs (id, seq, state, kind, queue, priority, args, attempt, max_attempts, run_lease,
      run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, attempted_at, created_at)
    SELECT w.id, nextval('{{schema}}.event_seq'), CASE WHEN p_consume THEN 'retryable' ELSE 'scheduled' END, w.kind,
      w.queue, w.priority, w.args, w.attempt + (CASE WHEN p_consume THEN 1 ELSE 0 END), w.max_attempts, w.new_lease,
      now() + w.delay_ms * interval '1 millisecond', w.attempt_timeout_ms, w.tags, w.metadata,
      {{schema}}.append_error(w.errors, w.error), w.unique_key, w.unique_states, NULL, w.created_at
    FROM winners w WHERE w.delay_ms > 0
    RETURNING 1
  ), readied AS (
    INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
      max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, created_at)
    SELECT v_slot, w.id, w.lane_id, nextval('{{schema}}.event_seq'), w.kind, w.queue, w.priority, w.args,
      w.attempt + (CASE WHEN p_consume THEN 1 ELSE 0 END), w.max_attempts, w.new_lease, now(), w.attempt_timeout_ms,
      w.tags, w.metadata, {{schema}}.append_error(w.errors, w.error), w.unique_key, w.unique_states, w.created_at
    FROM winners w WHERE w.delay_ms <= 0
    ORDER BY w.id
    RETURNING queue
  ), woken AS (
    SELECT pg_notify('awa_jobs_available', x.queue) FROM (SELECT DISTINCT queue FROM readied) x
  )
  SELECT w.id FROM winners w
  WHERE (SELECT count(*) FROM woken) >= 0 AND (SELECT count(*) FROM deferred) >= 0;
END
$$;

-- Ends open attempts for good: cancelled, or failed (to the DLQ when the queue has it enabled). Writes the
-- closure, the terminal fact and its live counter in one statement; releases unique keys whose states do not
-- include the new one. Returns each id whose attempt was still open, with whether it was dead-lettered.
CREATE FUNCTION {{schema}}.finalize_attempts(p_ids bigint[], p_leases bigint[], p_errors text[], p_outcome text)
RETURNS TABLE (id bigint, dlq boolean)
LANGUAGE sql AS $$
  WITH d AS (
    SELECT * FROM unnest(p_ids, p_leases, p_errors) AS d(id, run_lease, error)
  ), target AS (
    SELECT r.*, d.error, d.run_lease AS new_lease,
      (p_outcome = 'failed' AND coalesce(q.dlq_enabled, false)) AS to_dlq
    FROM {{schema}}.attempt_rows(p_ids, p_leases) r
    JOIN d ON d.id = r.id AND d.run_lease = r.run_lease + 1
    LEFT JOIN {{schema}}.queue_settings q ON q.name = r.queue
  ), closed AS (
    INSERT INTO {{schema}}.closures AS c (ready_slot, id, run_lease, outcome, closed_at)
    SELECT t.ready_slot, t.id, t.new_lease, p_outcome, now() FROM target t ORDER BY t.id
    ON CONFLICT DO NOTHING
    RETURNING c.id, c.run_lease
  ), winners AS (
    SELECT t.* FROM target t JOIN closed c ON c.id = t.id AND c.run_lease = t.new_lease
  ), dead AS (
    INSERT INTO {{schema}}.dlq_entries (id, kind, queue, args, priority, attempt, max_attempts, run_lease,
      attempt_timeout_ms, errors, tags, metadata, unique_key, unique_states, reason, created_at)
    SELECT w.id, w.kind, w.queue, w.args, w.priority, w.attempt + 1, w.max_attempts, w.new_lease, w.attempt_timeout_ms,
      {{schema}}.append_error(w.errors, w.error), w.tags, w.metadata, w.unique_key, w.unique_states,
      coalesce(w.error::jsonb ->> 'message', 'failed'), w.created_at
    FROM winners w WHERE w.to_dlq
    RETURNING 1
  ), done AS (
    INSERT INTO {{schema}}.done_entries (ready_slot, id, seq, body_seq, state, attempt, run_lease, errors, attempted_at,
      finalized_at)
    SELECT w.ready_slot, w.id, nextval('{{schema}}.event_seq'), w.lane_seq, p_outcome, w.attempt + 1, w.new_lease,
      {{schema}}.append_error(w.errors, w.error),
      (SELECT cb.claimed_at FROM {{schema}}.claim_batches cb
       WHERE cb.lane_id = w.lane_id AND (cb.max_seq >= w.lane_seq OR cb.max_seq = 0)
         AND cb.leases[array_position(cb.ids, w.id)] = w.new_lease ORDER BY cb.max_seq LIMIT 1),
      now()
    FROM winners w WHERE NOT w.to_dlq
    RETURNING 1
  ), counted AS (
    SELECT {{schema}}.count_terminal(array_agg(w.ready_slot), array_agg(w.queue), array_agg(w.priority),
      array_agg(p_outcome), array_agg(1::bigint))
    FROM winners w WHERE NOT w.to_dlq HAVING count(*) > 0
  ), released AS (
    DELETE FROM {{schema}}.unique_claims u USING winners w
    WHERE u.unique_key = w.unique_key AND u.job_id = w.id
      AND (w.to_dlq OR NOT (p_outcome = ANY (coalesce(w.unique_states, '{}'::text[]))))
    RETURNING 1
  )
  SELECT w.id, w.to_dlq FROM winners w
  WHERE (SELECT count(*) FROM counted) >= 0 AND (SELECT count(*) FROM dead) >= 0
    AND (SELECT count(*) FROM done) >= 0 AND (SELECT count(*) FROM released) >= 0
$$;

-- Completes open attempts: one closure per attempt, one completion_batches row per queue-ring slot, and the
-- live counters, in one call. Returns the ids whose attempt was still open. Written as steps over arrays so
-- every step is linear in the batch (a join of two CTEs is planned as a nested loop: quadratic at 1,000s).
CREATE FUNCTION {{schema}}.complete_attempts(p_ids bigint[], p_leases bigint[])
RETURNS TABLE (id bigint)
LANGUAGE plpgsql
-- Generic plans: these run on every enqueue or claim, and planning over the ring partitions costs more than
-- the statements themselves.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_slots smallint[];
  v_ids bigint[];
  v_leases bigint[];
  v_queues text[];
  v_prios smallint[];
  v_keys bytea[];
  v_release boolean;
  v_won bigint[];
BEGIN
  SELECT array_agg(r.ready_slot ORDER BY r.id), array_agg(r.id ORDER BY r.id), array_agg(r.run_lease + 1 ORDER BY r.id),
    array_agg(r.queue ORDER BY r.id), array_agg(r.priority ORDER BY r.id),
    array_agg(CASE WHEN r.unique_key IS NOT NULL AND NOT ('completed' = ANY (coalesce(r.unique_states, '{}'::text[])))
                   THEN r.unique_key END ORDER BY r.id),
    bool_or(r.unique_key IS NOT NULL AND NOT ('completed' = ANY (coalesce(r.unique_states, '{}'::text[]))))
  INTO v_slots, v_ids, v_leases, v_queues, v_prios, v_keys, v_release
  FROM {{schema}}.attempt_rows(p_ids, p_leases) r;
  IF v_ids IS NULL THEN RETURN; END IF;
  WITH closed AS (
    INSERT INTO {{schema}}.closures AS c (ready_slot, id, run_lease, outcome, closed_at)
    SELECT t.s, t.i, t.l, 'completed', now() FROM unnest(v_slots, v_ids, v_leases) AS t(s, i, l)
    ON CONFLICT DO NOTHING
    RETURNING c.id
  )
  SELECT array_agg(closed.id) INTO v_won FROM closed;
  IF v_won IS NULL THEN RETURN; END IF;
  IF cardinality(v_won) < cardinality(v_ids) THEN
    -- Some attempts were closed by someone else first (rare): keep only the winners.
    SELECT array_agg(t.s ORDER BY t.i), array_agg(t.i ORDER BY t.i), array_agg(t.l ORDER BY t.i),
      array_agg(t.q ORDER BY t.i), array_agg(t.p ORDER BY t.i), array_agg(t.k ORDER BY t.i)
    INTO v_slots, v_ids, v_leases, v_queues, v_prios, v_keys
    FROM unnest(v_slots, v_ids, v_leases, v_queues, v_prios, v_keys) AS t(s, i, l, q, p, k)
    WHERE t.i = ANY (v_won);
  END IF;
  INSERT INTO {{schema}}.completion_batches (ready_slot, seq, ids, leases, completed_at)
  SELECT t.s, nextval('{{schema}}.event_seq'), array_agg(t.i), array_agg(t.l), now()
  FROM unnest(v_slots, v_ids, v_leases) AS t(s, i, l) GROUP BY t.s;
  PERFORM {{schema}}.count_terminal(v_slots, v_queues, v_prios, array_fill('completed'::text, ARRAY[cardinality(v_ids)]),
    array_fill(1::bigint, ARRAY[cardinality(v_ids)]));
  IF v_release THEN
    DELETE FROM {{schema}}.unique_claims u USING unnest(v_keys, v_ids) AS t(k, i)
    WHERE t.k IS NOT NULL AND u.unique_key = t.k AND u.job_id = t.i;
  END IF;
  RETURN QUERY SELECT t.i FROM unnest(v_ids) AS t(i);
END
$$;

-- The advisory key of one attempt (namespace 3): rescue holds it from its decision to its write, and a
-- heartbeat waits for it, so a heartbeat never lands between the two.
CREATE FUNCTION {{schema}}.attempt_key(p_id bigint, p_lease bigint) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT hashtext(p_id::text || ':' || p_lease::text)
$$;

-- Records heartbeats of open attempts (upserting attempt_state); returns the ids still open.
CREATE FUNCTION {{schema}}.heartbeat_attempts(p_ids bigint[], p_leases bigint[])
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  PERFORM pg_advisory_xact_lock({{schema}}.lock_space(3), {{schema}}.attempt_key(x.id, x.lease))
  FROM (SELECT DISTINCT i.id, i.lease FROM unnest(p_ids, p_leases) AS i(id, lease) ORDER BY 1, 2) x;
  RETURN QUERY
  WITH open AS (
    SELECT r.id, r.run_lease + 1 AS lease FROM {{schema}}.attempt_rows(p_ids, p_leases) r
    WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                      WHERE c.id = r.id AND c.run_lease = r.run_lease + 1 AND c.ready_slot = r.ready_slot)
  ), beat AS (
    INSERT INTO {{schema}}.attempt_state AS a (id, run_lease, heartbeat_at)
    SELECT o.id, o.lease, now() FROM open o ORDER BY 1, 2
    ON CONFLICT (id, run_lease) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
    RETURNING a.id
  )
  SELECT b.id FROM beat b;
END
$$;

-- Finds up to p_limit open attempts to rescue (heartbeat older than p_stale_ms, or deadline passed more than
-- p_grace_ms ago), holding each one's attempt lock for the caller's transaction, and checks them again in a
-- fresh snapshot after the lock: an attempt whose heartbeat or closure landed meanwhile is left alone.
CREATE FUNCTION {{schema}}.find_rescuable(p_stale_ms bigint, p_grace_ms bigint, p_limit integer)
RETURNS TABLE (id bigint, run_lease bigint, attempt integer, max_attempts integer, kind text, queue text, reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ids bigint[];
  v_leases bigint[];
BEGIN
  WITH open AS (
    SELECT u.id, u.lease, u.rslot, cb.claimed_at, coalesce(u.timeout, cb.default_timeout_ms) AS timeout_ms
    FROM {{schema}}.claim_batches cb
    CROSS JOIN LATERAL unnest(cb.ids, cb.leases, cb.ready_slots, cb.timeouts) AS u(id, lease, rslot, timeout)
    WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                      WHERE c.id = u.id AND c.run_lease = u.lease AND c.ready_slot = u.rslot)
  ), stale AS (
    SELECT o.id, o.lease FROM open o
    LEFT JOIN {{schema}}.attempt_state a ON a.id = o.id AND a.run_lease = o.lease
    WHERE coalesce(a.heartbeat_at, o.claimed_at) < now() - p_stale_ms * interval '1 millisecond'
       OR o.claimed_at + o.timeout_ms * interval '1 millisecond' < now() - p_grace_ms * interval '1 millisecond'
    ORDER BY o.id
    LIMIT p_limit
  ), locked AS (
    SELECT s.id, s.lease FROM stale s
    WHERE pg_try_advisory_xact_lock({{schema}}.lock_space(3), {{schema}}.attempt_key(s.id, s.lease))
  )
  SELECT array_agg(l.id), array_agg(l.lease) INTO v_ids, v_leases FROM locked l;
  IF v_ids IS NULL THEN RETURN; END IF;
  RETURN QUERY
  SELECT r.id, r.run_lease + 1, r.attempt + 1, r.max_attempts, r.kind, r.queue,
    CASE WHEN cb.claimed_at + coalesce(r.attempt_timeout_ms, cb.default_timeout_ms) * interval '1 millisecond'
           < now() - p_grace_ms * interval '1 millisecond' THEN 'deadline' ELSE 'heartbeat' END
  FROM {{schema}}.attempt_rows(v_ids, v_leases) r
  JOIN LATERAL (
    SELECT c.claimed_at, c.default_timeout_ms FROM {{schema}}.claim_batches c
    WHERE c.lane_id = r.lane_id AND (c.max_seq >= r.lane_seq OR c.max_seq = 0)
      AND c.leases[array_position(c.ids, r.id)] = r.run_lease + 1 ORDER BY c.max_seq LIMIT 1
  ) cb ON true
  LEFT JOIN {{schema}}.attempt_state a ON a.id = r.id AND a.run_lease = r.run_lease + 1
  WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                    WHERE c.id = r.id AND c.run_lease = r.run_lease + 1 AND c.ready_slot = r.ready_slot)
    AND (coalesce(a.heartbeat_at, cb.claimed_at) < now() - p_stale_ms * interval '1 millisecond'
      OR cb.claimed_at + coalesce(r.attempt_timeout_ms, cb.default_timeout_ms) * interval '1 millisecond'
           < now() - p_grace_ms * interval '1 millisecond')
  ORDER BY r.id;
END
$$;

-- Moves deferred jobs p_ids to fresh ready rows (locking their lanes first): p_mode 'promote' keeps run_at,
-- 'due' moves it to now when later, 'retry' also starts a fresh attempt count. Returns the ids moved.
CREATE FUNCTION {{schema}}.ready_from_deferred(p_ids bigint[], p_mode text)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_slot smallint;
BEGIN
  PERFORM {{schema}}.lock_lanes(array_agg(f.queue), array_agg(f.priority))
  FROM {{schema}}.deferred_jobs f WHERE f.id = ANY (p_ids);
  v_slot := {{schema}}.current_queue_slot();
  RETURN QUERY
  WITH moved AS (
    DELETE FROM {{schema}}.deferred_jobs f WHERE f.id = ANY (p_ids) RETURNING f.*
  ), readied AS (
    INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
      max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, created_at)
    SELECT v_slot, m.id, l.lane_id, nextval('{{schema}}.event_seq'), m.kind, m.queue, m.priority, m.args,
      CASE WHEN p_mode = 'retry' THEN 0 ELSE m.attempt END, m.max_attempts, m.run_lease,
      CASE WHEN p_mode = 'promote' THEN m.run_at ELSE least(m.run_at, now()) END,
      m.attempt_timeout_ms, m.tags, m.metadata, m.errors, m.unique_key, m.unique_states, m.created_at
    FROM moved m JOIN {{schema}}.lanes l ON l.queue = m.queue AND l.priority = m.priority
    ORDER BY m.run_at, m.id
    RETURNING ready_entries.id, ready_entries.queue
  ), woken AS (
    SELECT pg_notify('awa_jobs_available', x.queue) FROM (SELECT DISTINCT queue FROM readied) x
  )
  SELECT r.id FROM readied r WHERE (SELECT count(*) FROM woken) >= 0 ORDER BY r.id;
END
$$;

-- Promotes up to p_limit due deferred jobs (skipping rows another promoter holds); returns how many.
CREATE FUNCTION {{schema}}.promote_due(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ids bigint[];
BEGIN
  SELECT array_agg(x.id) INTO v_ids FROM (
    SELECT f.id FROM {{schema}}.deferred_jobs f WHERE f.run_at <= now() ORDER BY f.run_at LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ) x;
  IF v_ids IS NULL THEN RETURN 0; END IF;
  RETURN (SELECT count(*) FROM {{schema}}.ready_from_deferred(v_ids, 'promote'));
END
$$;

-- Makes scheduled/retryable jobs available now (ids p_ids, queue, kind, due within p_within_ms; NULL = any).
CREATE FUNCTION {{schema}}.make_due(p_ids bigint[], p_queue text, p_kind text, p_within_ms bigint)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ids bigint[];
BEGIN
  SELECT array_agg(x.id) INTO v_ids FROM (
    SELECT f.id FROM {{schema}}.deferred_jobs f
    WHERE (p_ids IS NULL OR f.id = ANY (p_ids)) AND (p_queue IS NULL OR f.queue = p_queue)
      AND (p_kind IS NULL OR f.kind = p_kind)
      AND (p_within_ms IS NULL OR f.run_at <= now() + p_within_ms * interval '1 millisecond')
    ORDER BY f.id
    FOR UPDATE
  ) x;
  IF v_ids IS NULL THEN RETURN; END IF;
  RETURN QUERY SELECT r.id FROM {{schema}}.ready_from_deferred(v_ids, 'due') r ORDER BY r.id;
END
$$;

-- Serializes admin operations on one job (namespace 4) for the rest of the transaction.
CREATE FUNCTION {{schema}}.lock_job(p_id bigint) RETURNS void
LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock({{schema}}.lock_space(4), hashtext(p_id::text))
$$;

-- Runs job p_id again now with a fresh attempt count, from scheduled, retryable or a terminal state (whose
-- counter it decrements). Takes the unique key back when the job let go of it: raises unique_violation when
-- another job holds it. Returns false when the job is missing or in another state.
CREATE FUNCTION {{schema}}.retry_job(p_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  j record;
BEGIN
  PERFORM {{schema}}.lock_job(p_id);
  SELECT * INTO j FROM {{schema}}.job_rows(p_id);
  IF NOT FOUND OR j.state NOT IN ('scheduled', 'retryable', 'completed', 'failed', 'cancelled') THEN
    RETURN false;
  END IF;
  IF j.fact = 'f' THEN
    PERFORM {{schema}}.ready_from_deferred(ARRAY[p_id], 'retry');
    RETURN true;
  END IF;
  IF j.unique_key IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM {{schema}}.unique_claims u WHERE u.unique_key = j.unique_key AND u.job_id = p_id
  ) THEN
    INSERT INTO {{schema}}.unique_claims (unique_key, job_id) VALUES (j.unique_key, p_id);
  END IF;
  PERFORM {{schema}}.lock_lanes(ARRAY[j.queue], ARRAY[j.priority]);
  INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
    max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, created_at)
  SELECT {{schema}}.current_queue_slot(), j.id, l.lane_id, nextval('{{schema}}.event_seq'), j.kind, j.queue,
    j.priority, j.args, 0, j.max_attempts, j.run_lease, now(), j.attempt_timeout_ms, j.tags, j.metadata, j.errors,
    j.unique_key, j.unique_states, j.created_at
  FROM {{schema}}.lanes l WHERE l.queue = j.queue AND l.priority = j.priority;
  PERFORM {{schema}}.count_terminal(ARRAY[j.ready_slot], ARRAY[j.queue], ARRAY[j.priority], ARRAY[j.state], ARRAY[-1::bigint]);
  PERFORM pg_notify('awa_jobs_available', j.queue);
  RETURN true;
END
$$;

-- Cancels job p_id with error JSON p_error unless it is terminal: a pending ready row gets a tombstone (under
-- the lane's claim lock, so no claim races it), a running attempt a closure (its worker is told on
-- awa_job_cancelled), a deferred job is moved to a tombstoned ready row; each gets a cancelled terminal fact
-- and its counter. Returns false when the job is missing or terminal.
CREATE FUNCTION {{schema}}.cancel_job(p_id bigint, p_error text) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  j record;
  v_slot smallint;
  v_seq bigint;
  v_closed integer;
BEGIN
  PERFORM {{schema}}.lock_job(p_id);
  FOR round IN 1..3 LOOP
    SELECT * INTO j FROM {{schema}}.job_rows(p_id);
    IF NOT FOUND OR j.state NOT IN ('scheduled', 'available', 'running', 'retryable', 'waiting_external') THEN
      RETURN false;
    END IF;
    IF j.state = 'available' THEN
      PERFORM pg_advisory_xact_lock({{schema}}.lock_space(2), j.lane_id);
      -- Re-read in a fresh snapshot now that no claim of this lane can run.
      CONTINUE WHEN NOT EXISTS (
        SELECT 1 FROM {{schema}}.job_rows(p_id) x WHERE x.state = 'available' AND x.lane_seq = j.lane_seq);
      INSERT INTO {{schema}}.ready_tombstones (ready_slot, id, lane_seq) VALUES (j.ready_slot, p_id, j.lane_seq);
      v_slot := j.ready_slot;
      v_seq := j.lane_seq;
    ELSIF j.state IN ('running', 'waiting_external') THEN
      INSERT INTO {{schema}}.closures (ready_slot, id, run_lease, outcome, closed_at)
      VALUES (j.ready_slot, p_id, j.run_lease, 'cancelled', now()) ON CONFLICT DO NOTHING;
      GET DIAGNOSTICS v_closed = ROW_COUNT;
      CONTINUE WHEN v_closed = 0;
      PERFORM pg_notify('awa_job_cancelled', p_id::text);
      v_slot := j.ready_slot;
      v_seq := j.lane_seq;
    ELSE
      PERFORM {{schema}}.lock_lanes(ARRAY[j.queue], ARRAY[j.priority]);
      DELETE FROM {{schema}}.deferred_jobs f WHERE f.id = p_id;
      v_slot := {{schema}}.current_queue_slot();
      v_seq := nextval('{{schema}}.event_seq');
      INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
        max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states,
        created_at)
      SELECT v_slot, j.id, l.lane_id, v_seq, j.kind, j.queue, j.priority, j.args, j.attempt, j.max_attempts,
        j.run_lease, j.run_at, j.attempt_timeout_ms, j.tags, j.metadata, j.errors, j.unique_key, j.unique_states,
        j.created_at
      FROM {{schema}}.lanes l WHERE l.queue = j.queue AND l.priority = j.priority;
      INSERT INTO {{schema}}.ready_tombstones (ready_slot, id, lane_seq) VALUES (v_slot, p_id, v_seq);
    END IF;
    INSERT INTO {{schema}}.done_entries (ready_slot, id, seq, body_seq, state, attempt, run_lease, errors, attempted_at,
      finalized_at)
    VALUES (v_slot, p_id, nextval('{{schema}}.event_seq'), v_seq, 'cancelled', j.attempt, j.run_lease,
      {{schema}}.append_error(j.errors, p_error), j.attempted_at, now());
    PERFORM {{schema}}.count_terminal(ARRAY[v_slot], ARRAY[j.queue], ARRAY[j.priority], ARRAY['cancelled'], ARRAY[1::bigint]);
    IF j.unique_key IS NOT NULL AND NOT ('cancelled' = ANY (coalesce(j.unique_states, '{}'::text[]))) THEN
      DELETE FROM {{schema}}.unique_claims u WHERE u.unique_key = j.unique_key AND u.job_id = p_id;
    END IF;
    RETURN true;
  END LOOP;
  RETURN false;
END
$$;

-- Moves DLQ entries back to fresh ready rows with attempt 0 (entry p_id, else those matching queue and kind),
-- taking their unique keys back (unique_violation when another job holds one). Returns the ids.
CREATE FUNCTION {{schema}}.retry_dlq(p_id bigint, p_queue text, p_kind text)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ids bigint[];
  v_slot smallint;
BEGIN
  SELECT array_agg(x.id ORDER BY x.id) INTO v_ids FROM (
    SELECT e.id FROM {{schema}}.dlq_entries e
    WHERE (p_id IS NOT NULL AND e.id = p_id)
       OR (p_id IS NULL AND (p_queue IS NULL OR e.queue = p_queue) AND (p_kind IS NULL OR e.kind = p_kind))
    FOR UPDATE
  ) x;
  IF v_ids IS NULL THEN RETURN; END IF;
  INSERT INTO {{schema}}.unique_claims (unique_key, job_id)
  SELECT e.unique_key, e.id FROM {{schema}}.dlq_entries e
  WHERE e.id = ANY (v_ids) AND e.unique_key IS NOT NULL ORDER BY e.id;
  PERFORM {{schema}}.lock_lanes(array_agg(e.queue), array_agg(e.priority))
  FROM {{schema}}.dlq_entries e WHERE e.id = ANY (v_ids);
  v_slot := {{schema}}.current_queue_slot();
  RETURN QUERY
  WITH moved AS (
    DELETE FROM {{schema}}.dlq_entries e WHERE e.id = ANY (v_ids) RETURNING e.*
  ), readied AS (
    INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
      max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, created_at)
    SELECT v_slot, m.id, l.lane_id, nextval('{{schema}}.event_seq'), m.kind, m.queue, m.priority, m.args, 0,
      m.max_attempts, m.run_lease, now(), m.attempt_timeout_ms, m.tags, m.metadata, m.errors, m.unique_key,
      m.unique_states, m.created_at
    FROM moved m JOIN {{schema}}.lanes l ON l.queue = m.queue AND l.priority = m.priority
    ORDER BY m.id
    RETURNING ready_entries.id, ready_entries.queue
  ), woken AS (
    SELECT pg_notify('awa_jobs_available', x.queue) FROM (SELECT DISTINCT queue FROM readied) x
  )
  SELECT r.id FROM readied r WHERE (SELECT count(*) FROM woken) >= 0 ORDER BY r.id;
END
$$;

-- Deletes every job of queue p_queue in any state, and its DLQ entries, releasing unique keys: pending rows get
-- tombstones (under the lanes' claim locks), running attempts a closure, deferred rows are deleted, terminal
-- jobs a purge fact (their counters decremented). Returns the counts.
CREATE FUNCTION {{schema}}.purge_queue(p_queue text, OUT jobs integer, OUT dead_lettered integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  j record;
BEGIN
  jobs := 0;
  PERFORM pg_advisory_xact_lock({{schema}}.lock_space(2), l.lane_id)
  FROM (SELECT lane_id FROM {{schema}}.lanes WHERE queue = p_queue ORDER BY lane_id) l;
  FOR j IN SELECT * FROM {{schema}}.job_rows(NULL) x WHERE x.queue = p_queue LOOP
    IF j.state = 'available' THEN
      INSERT INTO {{schema}}.ready_tombstones (ready_slot, id, lane_seq) VALUES (j.ready_slot, j.id, j.lane_seq)
      ON CONFLICT DO NOTHING;
    ELSIF j.state IN ('running', 'waiting_external') THEN
      INSERT INTO {{schema}}.closures (ready_slot, id, run_lease, outcome, closed_at)
      VALUES (j.ready_slot, j.id, j.run_lease, 'purged', now()) ON CONFLICT DO NOTHING;
    ELSIF j.state IN ('scheduled', 'retryable') THEN
      DELETE FROM {{schema}}.deferred_jobs f WHERE f.id = j.id;
    ELSE
      INSERT INTO {{schema}}.done_entries (ready_slot, id, seq, body_seq, state, attempt, run_lease, errors,
        attempted_at, finalized_at)
      VALUES (j.ready_slot, j.id, nextval('{{schema}}.event_seq'), j.lane_seq, 'purged', j.attempt, j.run_lease,
        j.errors, j.attempted_at, now());
      PERFORM {{schema}}.count_terminal(ARRAY[j.ready_slot], ARRAY[j.queue], ARRAY[j.priority], ARRAY[j.state],
        ARRAY[-1::bigint]);
    END IF;
    DELETE FROM {{schema}}.unique_claims u WHERE u.job_id = j.id;
    jobs := jobs + 1;
  END LOOP;
  WITH gone AS (DELETE FROM {{schema}}.dlq_entries e WHERE e.queue = p_queue RETURNING 1)
  SELECT count(*) INTO dead_lettered FROM gone;
END
$$;

-- Recomputes the live terminal counters from the stored terminal facts (the newest fact of each job), under
-- an exclusive lock on the counter table. Returns the number of counter rows written.
CREATE FUNCTION {{schema}}.rebuild_terminal_counters() RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows integer;
BEGIN
  LOCK TABLE {{schema}}.queue_terminal_live_counts IN EXCLUSIVE MODE;
  DELETE FROM {{schema}}.queue_terminal_live_counts;
  INSERT INTO {{schema}}.queue_terminal_live_counts (ready_slot, queue, priority, state, count)
  SELECT j.ready_slot, j.queue, j.priority, j.state, count(*)
  FROM {{schema}}.job_rows(NULL) j
  WHERE j.state IN ('completed', 'failed', 'cancelled')
  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
