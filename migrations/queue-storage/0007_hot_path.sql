-- Hot-path speed for schema {{schema}}: the ring-slot and lane-cursor helpers become PL/pgSQL (a LANGUAGE sql function that is not inlined is planned again at every call, which cost more than its statement); producers also mark each lane they write as busy (and a single enqueue runs fewer statements), so a claimer on an idle lane reads its settled bound without scanning pg_locks; claim runs fewer statements per lane, reads only the live ring slots (see Live slots below) and returns each job's ready slot, which completions pass back so each attempt is looked up in one ring partition rather than all of them; the read model (job_rows) and the prune gate (queue_slot_blocker) take time linear in the rows they read; ring maintenance holds its locks briefly (see the end of this file). Results are unchanged; the two-argument complete_attempts of earlier clients still works.


-- The claim ring's current slot (newest generation).
CREATE OR REPLACE FUNCTION {{schema}}.current_claim_slot() RETURNS smallint
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT r.slot FROM {{schema}}.claim_ring_rotations r ORDER BY r.generation DESC LIMIT 1);
END
$$;

-- Plans without statistics. The hot path's generic plans are made once per session, from the statistics of the
-- moment. Ring partitions are truncated and refilled, so those statistics are often of an empty or tiny
-- partition (a VACUUM or ANALYZE that found it so), and for such a partition the planner reads a lane's whole
-- range and sorts it, or hashes the tombstones, rather than walking the lane's index: a claim of 100 on a
-- 30,000-row lane took 35 ms instead of 1.4. Index-ordered scans and nested loops are right at every size here,
-- so lane_cursor, claim (and lane_window, which it calls) and attempt_rows plan with the other strategies off.

-- A lane's claim cursor: the highest lane_seq any committed claim took (or the floor kept by claim prune).
-- The newest in-order receipt holds it, and it lies in the newest claim slot that holds any in-order receipt of
-- the lane: receipts are written under the lane's claim lock, each in its claimer's current claim slot read
-- after the lock, so in commit order both the slot's generation and max_seq only grow (a slot is reused only
-- once pruned empty). So the current slot is read first, one partition; the whole ring only when the lane has
-- no in-order receipt there (its first claim after a rotation). p_slot: the current claim slot, NULL to read it.
CREATE FUNCTION {{schema}}.lane_cursor(p_lane integer, p_slot smallint) RETURNS bigint
LANGUAGE plpgsql STABLE
-- Generic plans: the slot is a parameter, so a call initializes one partition, not the whole claim ring.
SET plan_cache_mode = force_generic_plan
-- Index plans whatever the statistics say (see Plans without statistics, above lane_cursor).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_sort = off AS $$
DECLARE
  v_floor bigint;
  v_max bigint;
BEGIN
  IF p_slot IS NULL THEN
    p_slot := (SELECT c.slot FROM {{schema}}.claim_ring_rotations c ORDER BY c.generation DESC LIMIT 1);
  END IF;
  SELECT l.claimed_floor,
    (SELECT max(cb.max_seq) FROM {{schema}}.claim_batches cb WHERE cb.claim_slot = p_slot AND cb.lane_id = p_lane)
  INTO v_floor, v_max
  FROM {{schema}}.lanes l WHERE l.lane_id = p_lane;
  IF coalesce(v_max, 0) = 0 THEN
    v_max := (SELECT max(cb.max_seq) FROM {{schema}}.claim_batches cb WHERE cb.lane_id = p_lane);
  END IF;
  RETURN greatest(v_floor, v_max, 0);
END
$$;

-- The one-argument form (0003), for callers outside this file: the same cursor.
CREATE OR REPLACE FUNCTION {{schema}}.lane_cursor(p_lane integer) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT {{schema}}.lane_cursor(p_lane, NULL::smallint)
$$;

-- Busy lanes (advisory namespace 6, key = lane id). Besides its reservation (see 0003), a producer holds the
-- lane's busy lock in SHARE mode from before it draws the reservation until its transaction ends. A claimer
-- that gets the busy lock in exclusive mode without waiting knows no producer is in flight on the lane: every
-- value event_seq has handed out so far for the lane's rows came from a transaction that has ended, and a
-- producer that registers later waits (for microseconds: the claimer takes no other lock and reads one
-- sequence while it holds it) and then draws values above the one the claimer read. So the claimer's bound
-- is event_seq's last value, read under the lock, and it needs pg_locks only when the lane is busy.
-- reserve_lanes registers as lock_lanes (0003) does, and returns the lanes' ids (in lane id order): a single enqueue
-- then writes its job's lane without looking it up again.
CREATE FUNCTION {{schema}}.reserve_lanes(p_queues text[], p_priorities smallint[]) RETURNS integer[]
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_held text := coalesce(current_setting('awa_qs.lanes_in_flight', true), '');
  v_lanes integer[];
  v_lane integer;
  v_mark text;
  v_res bigint;
BEGIN
  -- One job's lane, already there (the usual single insert): one index probe, no insert attempted.
  IF cardinality(p_queues) = 1 THEN
    v_lanes := ARRAY(SELECT l.lane_id FROM {{schema}}.lanes l
                     WHERE l.queue = p_queues[1] AND l.priority = p_priorities[1]);
  END IF;
  IF coalesce(cardinality(v_lanes), 0) = 0 THEN
    INSERT INTO {{schema}}.lanes (queue, priority)
    SELECT DISTINCT i.q, i.p FROM unnest(p_queues, p_priorities) AS i(q, p)
    WHERE i.q IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.lanes l WHERE l.queue = i.q AND l.priority = i.p)
    ORDER BY 1, 2
    ON CONFLICT (queue, priority) DO NOTHING;
    v_lanes := ARRAY(
      SELECT DISTINCT l.lane_id FROM {{schema}}.lanes l
      JOIN unnest(p_queues, p_priorities) AS i(q, p) ON l.queue = i.q AND l.priority = i.p
      ORDER BY l.lane_id);
  END IF;
  FOREACH v_lane IN ARRAY v_lanes LOOP
    v_mark := '{{schema}}/' || v_lane::text || ',';
    CONTINUE WHEN strpos(v_held, ',' || v_mark) > 0;
    PERFORM pg_advisory_xact_lock_shared({{schema}}.lock_space(6), v_lane);
    v_res := nextval('{{schema}}.event_seq');
    PERFORM pg_advisory_xact_lock({{schema}}.lane_space(v_lane),
      ((v_res % 4294967296) - CASE WHEN v_res % 4294967296 >= 2147483648 THEN 4294967296 ELSE 0 END)::integer);
    v_held := v_held || ',' || v_mark;
    PERFORM set_config('awa_qs.lanes_in_flight', v_held, true);
  END LOOP;
  RETURN v_lanes;
END
$$;

CREATE OR REPLACE FUNCTION {{schema}}.lock_lanes(p_queues text[], p_priorities smallint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM {{schema}}.reserve_lanes(p_queues, p_priorities);
END
$$;

-- The read model (0003), with the same rows in time linear in the jobs it reads: a lane's claim cursor is read once
-- per lane rather than once per ready row, and a claimed row's receipt is found with one index probe rather than
-- by scanning every later receipt of its lane (listing a queue with 57,000 finished jobs took minutes).
CREATE OR REPLACE FUNCTION {{schema}}.job_rows(p_id bigint)
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
  ), ready_rows AS (
    SELECT l.fam, r.*, l.state AS fact_state, l.attempt AS fact_attempt, l.run_lease AS fact_lease,
      l.errors AS fact_errors, l.attempted_at AS fact_attempted_at, l.finalized_at AS fact_finalized_at,
      coalesce(tb.claimed = false, false) AS tombstoned, tb.claimed AS tomb_claimed
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
  ), cursors AS (
    -- One cursor read per lane, not per row.
    SELECT k.lane_id, {{schema}}.lane_cursor(k.lane_id, NULL) AS upto
    FROM (SELECT DISTINCT rr.lane_id FROM ready_rows rr WHERE rr.fam = 'r') k
  ), ready AS (
    SELECT rr.*, (rr.fam = 'r' AND rr.tomb_claimed IS NULL AND rr.lane_seq > k.upto) AS pending
    FROM ready_rows rr LEFT JOIN cursors k ON k.lane_id = rr.lane_id
  ), ready_state AS (
    SELECT x.*, rc.claimed_at, rc.default_timeout_ms,
      EXISTS (SELECT 1 FROM {{schema}}.closures c
              WHERE c.id = x.id AND c.run_lease = x.run_lease + 1 AND c.ready_slot = x.ready_slot) AS closed
    FROM ready x
    LEFT JOIN LATERAL (
      -- The attempt's receipt. A row claimed out of lane order (a claimed tombstone) is in a receipt with max_seq 0;
      -- one claimed in order is in the lane's first receipt with max_seq at or above its lane_seq, and only there
      -- (receipts cover consecutive ranges of a lane), so that one receipt is read, not every later one.
      SELECT cb.claimed_at, cb.default_timeout_ms FROM {{schema}}.claim_batches cb
      WHERE x.fam IN ('r', 'c') AND NOT x.pending AND x.tomb_claimed AND cb.lane_id = x.lane_id AND cb.max_seq = 0
        AND cb.leases[array_position(cb.ids, x.id)] = x.run_lease + 1
      UNION ALL
      SELECT f.claimed_at, f.default_timeout_ms FROM (
        SELECT cb.claimed_at, cb.default_timeout_ms, cb.ids, cb.leases FROM {{schema}}.claim_batches cb
        WHERE x.fam IN ('r', 'c') AND NOT x.pending AND x.tomb_claimed IS NOT TRUE AND cb.lane_id = x.lane_id
          AND cb.max_seq >= x.lane_seq
        ORDER BY cb.max_seq LIMIT 1
      ) f
      WHERE f.leases[array_position(f.ids, x.id)] = x.run_lease + 1
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

-- Why queue-ring slot p_slot cannot be pruned yet (0004), with each lane's claim cursor read once rather than once
-- per row of the slot: maintenance checks it for the oldest sealed slot at every run, and again under the
-- slot's ACCESS EXCLUSIVE lock before it truncates.
CREATE OR REPLACE FUNCTION {{schema}}.queue_slot_blocker(p_slot smallint) RETURNS text
LANGUAGE sql STABLE AS $$
  WITH cursors AS MATERIALIZED (
    SELECT l.lane_id, {{schema}}.lane_cursor(l.lane_id, NULL) AS upto FROM {{schema}}.lanes l
    WHERE EXISTS (SELECT 1 FROM {{schema}}.ready_entries r WHERE r.ready_slot = p_slot AND r.lane_id = l.lane_id)
  )
  SELECT CASE
    WHEN EXISTS (
      SELECT 1 FROM {{schema}}.ready_entries r
      JOIN cursors k ON k.lane_id = r.lane_id
      LEFT JOIN {{schema}}.ready_tombstones t ON t.ready_slot = r.ready_slot AND t.id = r.id AND t.lane_seq = r.lane_seq
      WHERE r.ready_slot = p_slot AND t.id IS NULL AND r.lane_seq > k.upto)
      THEN 'a pending job'
    WHEN EXISTS (
      SELECT 1 FROM {{schema}}.ready_entries r
      JOIN cursors k ON k.lane_id = r.lane_id
      LEFT JOIN {{schema}}.ready_tombstones t ON t.ready_slot = r.ready_slot AND t.id = r.id AND t.lane_seq = r.lane_seq
      WHERE r.ready_slot = p_slot AND (t.claimed OR (t.id IS NULL AND r.lane_seq <= k.upto))
        AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                        WHERE c.ready_slot = r.ready_slot AND c.id = r.id AND c.run_lease = r.run_lease + 1))
      THEN 'an open attempt'
    WHEN EXISTS (SELECT 1 FROM {{schema}}.claim_batches cb WHERE p_slot = ANY (cb.ready_slots))
      THEN 'claim receipts still point at it'
  END
$$;

-- Enqueue (0003), with the same results in fewer statements when it inserts one job (the usual producer call):
-- no array built by a query, no deferred insert when nothing is deferred, one lane and one NOTIFY named directly.
CREATE OR REPLACE FUNCTION {{schema}}.enqueue(
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
  v_lane integer;
BEGIN
  IF v_n = 1 THEN
    v_ids := ARRAY[{{schema}}.next_job_id()];
    v_run_ats := ARRAY[coalesce(p_run_ats[1], v_now + p_delays[1] * interval '1 millisecond', v_now)];
  ELSE
    v_ids := ARRAY(SELECT {{schema}}.next_job_id() FROM generate_series(1, v_n));
    v_run_ats := ARRAY(
      SELECT coalesce(i.r, v_now + i.d * interval '1 millisecond', v_now)
      FROM unnest(p_run_ats, p_delays) WITH ORDINALITY AS i(r, d, o) ORDER BY i.o);
  END IF;
  v_won := array_fill(true, ARRAY[v_n]);
  IF coalesce(cardinality(array_remove(p_unique_keys, NULL)), 0) > 0 THEN
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
  IF v_n = 1 THEN
    -- One job due now: its lane comes from the reservation, and one row of VALUES costs less than the general
    -- statement below (no series to join to the lanes and sort).
    IF v_won[1] AND v_run_ats[1] <= v_clock THEN
      v_lane := ({{schema}}.reserve_lanes(p_queues, p_priorities))[1];
      v_slot := {{schema}}.current_queue_slot();
    INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
        max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states,
        created_at)
      VALUES (v_slot, v_ids[1], v_lane, nextval('{{schema}}.event_seq'), p_kinds[1], p_queues[1], p_priorities[1],
        p_args[1]::jsonb, 0, p_max_attempts[1], 0, v_run_ats[1], p_timeouts[1],
        CASE WHEN p_tags[1] IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(p_tags[1]::jsonb)) END,
        coalesce(p_metadata[1]::jsonb, '{}'::jsonb), NULL, decode(p_unique_keys[1], 'hex'), p_unique_states[1]::text[],
        v_now);
    END IF;
  ELSE
    PERFORM {{schema}}.reserve_lanes(array_agg(p_queues[o]), array_agg(p_priorities[o]))
    FROM generate_series(1, v_n) AS o WHERE v_won[o] AND v_run_ats[o] <= v_clock;
    v_slot := {{schema}}.current_queue_slot();
    INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
      max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states,
      created_at)
    SELECT v_slot, v_ids[o], l.lane_id, nextval('{{schema}}.event_seq'), p_kinds[o], p_queues[o], p_priorities[o],
      p_args[o]::jsonb, 0, p_max_attempts[o], 0, v_run_ats[o], p_timeouts[o],
      CASE WHEN p_tags[o] IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(p_tags[o]::jsonb)) END,
      coalesce(p_metadata[o]::jsonb, '{}'::jsonb), NULL, decode(p_unique_keys[o], 'hex'), p_unique_states[o]::text[], v_now
    FROM generate_series(1, v_n) AS o
    JOIN {{schema}}.lanes l ON l.queue = p_queues[o] AND l.priority = p_priorities[o]
    WHERE v_won[o] AND v_run_ats[o] <= v_clock
    ORDER BY o;
  END IF;
  -- Jobs due later wait in deferred_jobs.
  IF v_clock < ANY (v_run_ats) THEN
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
  END IF;
  IF v_n = 1 THEN
    IF v_won[1] AND v_run_ats[1] <= v_clock THEN
      PERFORM pg_notify('awa_jobs_available', p_queues[1]);
    END IF;
  ELSE
    PERFORM pg_notify('awa_jobs_available', q.queue)
    FROM (SELECT DISTINCT p_queues[o] AS queue FROM generate_series(1, v_n) AS o
          WHERE v_won[o] AND v_run_ats[o] <= v_clock) q;
  END IF;
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

-- The highest lane_seq of lane p_lane up to which every row is settled (see the top of 0003 and lock_lanes
-- above): read the lane up to here, in a snapshot taken after this call.
CREATE OR REPLACE FUNCTION {{schema}}.lane_settled_upto(p_lane integer) RETURNS bigint
LANGUAGE plpgsql
-- Generic plans: these run on every enqueue or claim, and planning over the ring partitions costs more than
-- the statements themselves.
SET plan_cache_mode = force_generic_plan VOLATILE AS $$
DECLARE
  v_high bigint;
  v_low bigint;
  v_locked boolean := false;
BEGIN
  -- Idle lane: the busy lock is free. It is a session lock, held only while the sequence is read and released
  -- on any error too (the lock is taken inside the block), so a failed call never leaves producers waiting.
  BEGIN
    v_locked := pg_try_advisory_lock({{schema}}.lock_space(6), p_lane);
    IF v_locked THEN
      v_high := coalesce(pg_sequence_last_value('{{schema}}.event_seq'), 0);
      PERFORM pg_advisory_unlock({{schema}}.lock_space(6), p_lane);
      RETURN v_high;
    END IF;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    IF v_locked THEN
      PERFORM pg_advisory_unlock({{schema}}.lock_space(6), p_lane);
    END IF;
    RAISE;
  END;
  v_high := coalesce(pg_sequence_last_value('{{schema}}.event_seq'), 0);
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

-- Live slots. A claim reads only the queue-ring slots that can hold a lane's unclaimed rows, the live ones:
-- those whose ledger row is not retired, plus the slots listed in queue_ring_strays. Each is one partition of
-- ready_entries and of ready_tombstones, and a claim initializes only those (planning and initializing all
-- sixteen cost more than the rest of the claim).
--  * Every ready row is written into the slot current_queue_slot() returns, in the writer's snapshot. The
--    writer first holds slot lock (advisory namespace 7, key = slot) in SHARE mode until it ends, then reads
--    queue_ring_retired_upto, a sequence (not MVCC: every session sees its last value at once). If that is
--    past the writer's generation, the writer's snapshot may be older than a retirement of its slot, so it
--    lists the slot in queue_ring_strays, in its own transaction: its rows and the stray entry commit together.
--  * retire_queue_slots (maintenance, after maintain_rings) first raises queue_ring_retired_upto to the
--    current generation, then retires each other slot it can take the slot lock on exclusively and that then
--    holds no ready row (in a fresh snapshot: every writer of the slot has ended), dropping its strays.
--  So a retired, unlisted slot never holds a row: a writer that locked the slot first is waited for and its
--  rows are seen; one that locks it later reads a generation past its own and lists the slot. A claim reads the
--  live slots after lane_settled_upto, so every writer below the settled bound has ended and its rows, ledger
--  row and strays are visible to the claim. Maintenance that never retires (an older runtime) leaves every
--  ledger slot live, as before.
ALTER TABLE {{schema}}.queue_ring_rotations ADD COLUMN retired boolean NOT NULL DEFAULT false;
COMMENT ON TABLE {{schema}}.queue_ring_rotations IS 'awa queue-storage queue-ring rotations ledger (append-only, plus one update when its slot is retired). Reclaim kind: warm (bounded by ring size: generations older than one lap are deleted at rotation).';

-- No key: a writer under REPEATABLE READ must not conflict with another's entry it cannot see (that would fail it
-- with a serialization error), so each such writer adds its own row.
CREATE TABLE {{schema}}.queue_ring_strays (
  slot smallint NOT NULL CHECK (slot BETWEEN 0 AND {{queue_ring_slots}} - 1),
  listed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {{schema}}.queue_ring_strays IS 'awa queue-storage queue-ring slots written by a writer whose snapshot may predate the slot''s retirement: claims read them too. Reclaim kind: warm (bounded by writer transactions whose snapshot predates a slot retirement, one row each per generation; deleted when the slot is retired).';

CREATE SEQUENCE {{schema}}.queue_ring_retired_upto MINVALUE 0 START 0;
SELECT setval('{{schema}}.queue_ring_retired_upto', (SELECT max(r.generation) FROM {{schema}}.queue_ring_rotations r));
-- A slot without a ledger row was never current since its last lap; if it holds rows all the same, claims read it.
INSERT INTO {{schema}}.queue_ring_strays (slot)
SELECT s.slot FROM generate_series(0, {{queue_ring_slots}} - 1) AS s(slot)
WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.queue_ring_rotations r WHERE r.slot = s.slot)
  AND EXISTS (SELECT 1 FROM {{schema}}.ready_entries e WHERE e.ready_slot = s.slot);

-- The queue-ring slot a writer appends ready rows to: the current slot in the writer's snapshot, with the slot
-- lock held and the slot listed as a stray when the snapshot may be older than its retirement (see Live slots).
-- Once per generation and transaction (awa_qs.slots_in_flight).
CREATE OR REPLACE FUNCTION {{schema}}.current_queue_slot() RETURNS smallint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_gen bigint;
  v_slot smallint;
  v_held text := coalesce(current_setting('awa_qs.slots_in_flight', true), '');
  v_mark text;
BEGIN
  SELECT r.generation, r.slot INTO v_gen, v_slot FROM {{schema}}.queue_ring_rotations r
  ORDER BY r.generation DESC LIMIT 1;
  v_mark := ',{{schema}}/' || v_gen::text || ',';
  IF strpos(v_held, v_mark) = 0 THEN
    PERFORM pg_advisory_xact_lock_shared({{schema}}.lock_space(7), v_slot);
    IF pg_sequence_last_value('{{schema}}.queue_ring_retired_upto') > v_gen THEN
      INSERT INTO {{schema}}.queue_ring_strays (slot) VALUES (v_slot);
    END IF;
    PERFORM set_config('awa_qs.slots_in_flight', v_held || v_mark, true);
  END IF;
  RETURN v_slot;
END
$$;

-- Retires the queue-ring slots, other than the current one, that hold no ready row (see Live slots): a slot
-- whose lock a writer holds for longer than p_lock_timeout_ms stays live until a later run. Maintenance runs it
-- after maintain_rings; returns the slots retired.
CREATE FUNCTION {{schema}}.retire_queue_slots(p_lock_timeout_ms integer) RETURNS integer[]
LANGUAGE plpgsql AS $$
DECLARE
  v_old_timeout text := current_setting('lock_timeout');
  v_gen bigint;
  v_cur smallint;
  v_slot smallint;
  v_retired integer[] := '{}';
BEGIN
  IF NOT pg_try_advisory_xact_lock({{schema}}.lock_space(5), 0) THEN
    RETURN v_retired;
  END IF;
  SELECT r.generation, r.slot INTO v_gen, v_cur FROM {{schema}}.queue_ring_rotations r
  ORDER BY r.generation DESC LIMIT 1;
  IF coalesce(pg_sequence_last_value('{{schema}}.queue_ring_retired_upto'), -1) < v_gen THEN
    PERFORM setval('{{schema}}.queue_ring_retired_upto', v_gen);
  END IF;
  PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
  FOR v_slot IN
    SELECT r.slot FROM {{schema}}.queue_ring_rotations r WHERE NOT r.retired AND r.slot <> v_cur
    UNION SELECT s.slot FROM {{schema}}.queue_ring_strays s WHERE s.slot <> v_cur
    ORDER BY 1
  LOOP
    BEGIN
      PERFORM pg_advisory_xact_lock({{schema}}.lock_space(7), v_slot);
      -- A fresh snapshot, now that every writer of the slot has ended.
      IF NOT EXISTS (SELECT 1 FROM {{schema}}.ready_entries e WHERE e.ready_slot = v_slot) THEN
        UPDATE {{schema}}.queue_ring_rotations r SET retired = true WHERE r.slot = v_slot AND NOT r.retired;
        DELETE FROM {{schema}}.queue_ring_strays s WHERE s.slot = v_slot;
        v_retired := v_retired || v_slot::integer;
      END IF;
    EXCEPTION WHEN lock_not_available THEN
      NULL;
    END;
  END LOOP;
  PERFORM set_config('lock_timeout', v_old_timeout, true);
  RETURN v_retired;
END
$$;

-- A lane's first p_limit claimable rows after p_after up to p_upto (not tombstoned), in lane order, read from the
-- ring slots p_slots only (the live ones; a slot listed twice is read once), one slot at a time: each slot's
-- statement names its partitions by a plain parameter, so its plan initializes only them and probes the
-- tombstones without pruning again per row (reading up to four slots in one statement did that per row: a claim
-- of 100 took a quarter longer). An array rather than a set of rows: the claim calls it as an expression, which
-- costs less than a query over a set-returning function.
CREATE FUNCTION {{schema}}.lane_window(p_lane integer, p_after bigint, p_upto bigint, p_limit integer,
  p_slots smallint[])
RETURNS {{schema}}.ready_entries[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_slot smallint;
  v_read smallint[] := '{}';
  v_win {{schema}}.ready_entries[] := '{}';
BEGIN
  FOREACH v_slot IN ARRAY p_slots LOOP
    CONTINUE WHEN v_slot = ANY (v_read);
    v_read := v_read || v_slot;
    v_win := v_win || ARRAY(
      SELECT r FROM {{schema}}.ready_entries r
      WHERE r.ready_slot = v_slot AND r.lane_id = p_lane AND r.lane_seq > p_after AND r.lane_seq <= p_upto
        AND NOT EXISTS (SELECT 1 FROM {{schema}}.ready_tombstones t
                        WHERE t.ready_slot = v_slot AND t.id = r.id AND t.lane_seq = r.lane_seq)
      ORDER BY r.lane_seq
      LIMIT p_limit);
  END LOOP;
  IF cardinality(v_read) > 1 THEN
    v_win := ARRAY(SELECT w FROM unnest(v_win) w ORDER BY w.lane_seq LIMIT p_limit);
  END IF;
  RETURN v_win;
END
$$;

-- Claims up to p_limit jobs of queue p_queue (kinds p_kinds, NULL for any), lanes in priority order; see 0003
-- for the window, the cursor prefix and the receipts. Same rows as before, in fewer statements per lane (the
-- window is read from the live slots only, and a window taken whole needs no prefix or tombstone), plus
-- ready_slot (the ring partition of the job's ready row) as the last column: a new output column changes the
-- function's type, hence DROP and CREATE. Clients that read columns by name are unaffected.
DROP FUNCTION {{schema}}.claim(text, integer, integer, text[]);
CREATE FUNCTION {{schema}}.claim(p_queue text, p_limit integer, p_default_timeout_ms integer, p_kinds text[])
RETURNS TABLE (id bigint, kind text, queue text, args jsonb, priority smallint, attempt integer,
  max_attempts integer, run_lease bigint, run_at double precision, attempted_at double precision,
  deadline_at double precision, attempt_timeout_ms integer, tags text[], metadata jsonb, created_at double precision,
  ready_slot smallint)
LANGUAGE plpgsql
-- Generic plans: these run on every enqueue or claim, and planning over the ring partitions costs more than
-- the statements themselves.
SET plan_cache_mode = force_generic_plan
-- Index plans whatever the statistics say (see Plans without statistics, above lane_cursor).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_sort = off AS $$
#variable_conflict use_column
DECLARE
  v_lane integer;
  v_cursor bigint;
  v_high bigint;
  v_left integer := p_limit;
  v_got integer;
  v_now timestamptz := now();
  v_cslot smallint;
  v_slots smallint[];
  v_win {{schema}}.ready_entries[];
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
  IF p_limit <= 0 THEN
    RETURN;
  END IF;
  -- The lanes read into an array first: a FOR over a query keeps a cursor open across the loop, which costs more.
  FOREACH v_lane IN ARRAY ARRAY(
    SELECT l.lane_id FROM {{schema}}.lanes l
    WHERE l.queue = p_queue
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.queue_settings q WHERE q.name = p_queue AND q.paused)
    ORDER BY l.priority)
  LOOP
    EXIT WHEN v_left <= 0;
    IF NOT pg_try_advisory_xact_lock({{schema}}.lock_space(2), v_lane) THEN
      CONTINUE WHEN NOT {{schema}}.lock_lane_claim(v_lane, 100);
    END IF;
    v_high := {{schema}}.lane_settled_upto(v_lane);
    -- The claim ring's current slot (receipts go there) and the live queue-ring slots, then the cursor, read from
    -- that claim slot first.
    -- (A slot may be listed twice; lane_window reads it once. Concatenating costs less than a UNION.)
    SELECT (SELECT c.slot FROM {{schema}}.claim_ring_rotations c ORDER BY c.generation DESC LIMIT 1),
      ARRAY(SELECT q.slot FROM {{schema}}.queue_ring_rotations q WHERE NOT q.retired)
        || ARRAY(SELECT s.slot FROM {{schema}}.queue_ring_strays s)
    INTO v_cslot, v_slots;
    v_cursor := {{schema}}.lane_cursor(v_lane, v_cslot);
    -- The window: the lane's next claimable rows, read once (from the live slots only). Without a kind filter,
    -- the first v_left rows are read whole, and of the 100 after them only the earliest run time: when none runs
    -- before the latest of the first v_left (the usual backlog), those are the rows the full window would give
    -- first in (run_at, lane_seq) order, so they are the claim. Otherwise the full window is read.
    v_win := NULL;
    IF p_kinds IS NULL THEN
      v_win := {{schema}}.lane_window(v_lane, v_cursor, v_high, v_left, v_slots);
      -- (Two IFs: a condition with a subquery runs as a query, its executor set up in full at every call; the usual window
      -- is not full, and that test alone is a plain expression.)
      IF cardinality(v_win) = v_left THEN
        IF (SELECT min(a.run_at) FROM unnest({{schema}}.lane_window(v_lane, v_win[v_left].lane_seq, v_high, 100, v_slots)) a)
           < (SELECT max(w.run_at) FROM unnest(v_win) w) THEN
          v_win := NULL;
        END IF;
      END IF;
    END IF;
    IF v_win IS NULL THEN
      v_win := {{schema}}.lane_window(v_lane, v_cursor, v_high, v_left + 100, v_slots);
    END IF;
    CONTINUE WHEN cardinality(v_win) = 0;
    IF p_kinds IS NULL AND cardinality(v_win) <= v_left THEN
      -- Every row of the window is taken, so all in lane order: one receipt up to the last, no tombstone. The
      -- statement below gives the same rows in this case; this one is smaller, and this is the usual case (workers
      -- that keep up find fewer jobs than they ask for; a backlog in run-time order is taken v_left at a time).
      IF cardinality(v_win) = 1 THEN
        -- One job (a worker keeping up): its receipt as one row of VALUES.
        INSERT INTO {{schema}}.claim_batches (claim_slot, lane_id, max_seq, claimed_at, default_timeout_ms, ids, leases,
          ready_slots, timeouts)
        VALUES (v_cslot, v_lane, v_win[1].lane_seq, v_now, p_default_timeout_ms, ARRAY[v_win[1].id],
          ARRAY[v_win[1].run_lease + 1], ARRAY[v_win[1].ready_slot], ARRAY[v_win[1].attempt_timeout_ms]);
      ELSE
        INSERT INTO {{schema}}.claim_batches (claim_slot, lane_id, max_seq, claimed_at, default_timeout_ms, ids, leases,
          ready_slots, timeouts)
        SELECT v_cslot, v_lane, max(p.lane_seq), v_now, p_default_timeout_ms,
          array_agg(p.id ORDER BY p.lane_seq), array_agg(p.run_lease + 1 ORDER BY p.lane_seq),
          array_agg(p.ready_slot ORDER BY p.lane_seq), array_agg(p.attempt_timeout_ms ORDER BY p.lane_seq)
        FROM unnest(v_win) p;
      END IF;
      RETURN QUERY
      SELECT p.id, p.kind, p.queue, p.args, p.priority, p.attempt + 1, p.max_attempts, p.run_lease + 1,
        date_part('epoch', p.run_at) * 1000, date_part('epoch', v_now) * 1000,
        date_part('epoch', v_now + coalesce(p.attempt_timeout_ms, p_default_timeout_ms) * interval '1 millisecond') * 1000,
        p.attempt_timeout_ms, p.tags, p.metadata, date_part('epoch', p.created_at) * 1000, p.ready_slot
      FROM unnest(v_win) p
      ORDER BY p.run_at, p.lane_seq;
    ELSE
      RETURN QUERY
      WITH win AS (
        SELECT r.*, row_number() OVER (ORDER BY r.lane_seq) AS wn FROM unnest(v_win) r
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
        p.attempt_timeout_ms, p.tags, p.metadata, date_part('epoch', p.created_at) * 1000, p.ready_slot
      FROM picked p
      WHERE (SELECT count(*) FROM receipt) >= 0 AND (SELECT count(*) FROM out_of_order) >= 0
      ORDER BY p.run_at, p.lane_seq;
    END IF;
    GET DIAGNOSTICS v_got = ROW_COUNT;
    v_left := v_left - v_got;
  END LOOP;
END
$$;

-- attempt_rows (0003) with each attempt's ready slot as given by claim (p_slots; NULL where unknown, e.g. from a
-- client that predates it). The attempts are looked up one ring slot at a time, each slot's plan initializing
-- only its partitions and probing them without pruning again per attempt (an attempt with an unknown slot first
-- has its slot found in all of them).
CREATE FUNCTION {{schema}}.attempt_rows(p_ids bigint[], p_leases bigint[], p_slots smallint[])
RETURNS SETOF {{schema}}.ready_entries
LANGUAGE plpgsql STABLE
-- Generic plans: the slots are parameters, so a group initializes its partitions only.
SET plan_cache_mode = force_generic_plan
-- Index plans whatever the statistics say (see Plans without statistics, above lane_cursor).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_sort = off AS $$
DECLARE
  v_ids bigint[] := p_ids;
  v_leases bigint[] := p_leases;
  v_slots smallint[] := p_slots;
  v_slot smallint;
BEGIN
  IF v_slots IS NULL OR array_position(v_slots, NULL) IS NOT NULL THEN
    SELECT array_agg(x.id), array_agg(x.lease), array_agg(x.slot) INTO v_ids, v_leases, v_slots FROM (
      SELECT d.id, d.lease, d.slot FROM unnest(p_ids, p_leases, p_slots) AS d(id, lease, slot) WHERE d.slot IS NOT NULL
      UNION
      -- One index probe per attempt (OFFSET 0 keeps the planner from turning this into a scan of the ring).
      SELECT d.id, d.lease, r.ready_slot FROM unnest(p_ids, p_leases, p_slots) AS d(id, lease, slot)
      CROSS JOIN LATERAL (
        SELECT r0.ready_slot FROM {{schema}}.ready_entries r0 WHERE r0.id = d.id AND r0.run_lease = d.lease - 1 OFFSET 0
      ) r
      WHERE d.slot IS NULL
    ) x;
    IF v_ids IS NULL THEN
      RETURN;
    END IF;
  END IF;
  -- (An array rather than a FOR over a query, which keeps a cursor open across the loop.)
  FOREACH v_slot IN ARRAY ARRAY(SELECT DISTINCT d.s FROM unnest(v_slots) AS d(s)) LOOP
    RETURN QUERY
    WITH cand AS MATERIALIZED (
      SELECT r.* FROM unnest(v_ids, v_leases, v_slots) AS d(id, run_lease, slot)
      CROSS JOIN LATERAL (
        SELECT r0.* FROM {{schema}}.ready_entries r0
        WHERE r0.ready_slot = v_slot AND r0.id = d.id AND r0.run_lease = d.run_lease - 1 OFFSET 0
      ) r
      WHERE d.slot = v_slot
    ), cursors AS MATERIALIZED (
      -- One cursor read per lane, not per attempt.
      SELECT x.lane_id, {{schema}}.lane_cursor(x.lane_id, NULL) AS upto FROM (SELECT DISTINCT lane_id FROM cand) x
    )
    SELECT c.* FROM cand c
    JOIN cursors k ON k.lane_id = c.lane_id
    LEFT JOIN {{schema}}.ready_tombstones t ON t.ready_slot = v_slot AND t.id = c.id AND t.lane_seq = c.lane_seq
    WHERE t.claimed OR (t.id IS NULL AND c.lane_seq <= k.upto);
  END LOOP;
END
$$;

-- The two-argument form (0003), used by heartbeats, retries, failures and cancels: the same lookup with every
-- slot unknown, so there is one attempt lookup to keep right.
CREATE OR REPLACE FUNCTION {{schema}}.attempt_rows(p_ids bigint[], p_leases bigint[])
RETURNS SETOF {{schema}}.ready_entries
LANGUAGE sql STABLE AS $$
  SELECT * FROM {{schema}}.attempt_rows(p_ids, p_leases, NULL::smallint[])
$$;

-- Completes open attempts (p_ids, p_leases, with their ready slots p_slots as claim returned them, NULL where
-- unknown); returns the ids whose attempt was still open. The closures' unique index decides a race with a
-- rescue or another writer: the closures are inserted plainly first (cheaper than ON CONFLICT, row by row),
-- and only when one of them already exists is the batch inserted again with ON CONFLICT DO NOTHING.
CREATE FUNCTION {{schema}}.complete_attempts(p_ids bigint[], p_leases bigint[], p_slots smallint[])
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
  FROM {{schema}}.attempt_rows(p_ids, p_leases, p_slots) r;
  IF v_ids IS NULL THEN RETURN; END IF;
  BEGIN
    INSERT INTO {{schema}}.closures (ready_slot, id, run_lease, outcome, closed_at)
    SELECT t.s, t.i, t.l, 'completed', now() FROM unnest(v_slots, v_ids, v_leases) AS t(s, i, l);
    v_won := v_ids;
  EXCEPTION WHEN unique_violation THEN
    WITH closed AS (
      INSERT INTO {{schema}}.closures AS c (ready_slot, id, run_lease, outcome, closed_at)
      SELECT t.s, t.i, t.l, 'completed', now() FROM unnest(v_slots, v_ids, v_leases) AS t(s, i, l)
      ON CONFLICT DO NOTHING
      RETURNING c.id
    )
    SELECT array_agg(closed.id) INTO v_won FROM closed;
  END;
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

-- The two-argument form (0003) of earlier clients: the same completion with every slot unknown.
CREATE OR REPLACE FUNCTION {{schema}}.complete_attempts(p_ids bigint[], p_leases bigint[])
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT c.id FROM {{schema}}.complete_attempts(p_ids, p_leases, NULL::smallint[]) c;
END
$$;

-- Ring maintenance that holds its locks briefly. A claim's or completion's statements lock every partition of
-- the ring tables they read (a generic plan locks each partition it may prune), so while a prune holds a slot's
-- ACCESS EXCLUSIVE lock, claims and completions wait: pruning a queue slot of 46,000 jobs stopped the queue for
-- a second, most of it spent checking the gates again and reading the whole read model for jobs to carry
-- forward. maintain_rings (0004) now checks both rings' gates before it takes any lock, and under the locks
-- checks them again only if the slot's rows changed meanwhile, which it judges by counting them: the ring tables
-- only grow until a prune truncates them, a gate that held can fail later only through new rows (attempts only
-- close, and a slot's tombstones and receipts follow rows that were pending), and a count taken once the lock
-- is held includes every writer that was in flight. Jobs to carry forward are looked for only when the slot
-- holds a failed or cancelled fact inside retention (a job is failed or cancelled through such a fact, written in
-- its body's slot). Results are unchanged.

-- Whether claim-ring slot p_slot holds a receipt of an attempt that has no closure yet.
CREATE FUNCTION {{schema}}.claim_slot_open(p_slot smallint) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM {{schema}}.claim_batches cb
    CROSS JOIN LATERAL unnest(cb.ids, cb.leases, cb.ready_slots) AS u(id, lease, rslot)
    WHERE cb.claim_slot = p_slot
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                      WHERE c.ready_slot = u.rslot AND c.id = u.id AND c.run_lease = u.lease))
$$;

CREATE OR REPLACE FUNCTION {{schema}}.maintain_rings(p_queue_rotate_ms bigint, p_claim_rotate_ms bigint, p_failed_ms bigint,
  p_lock_timeout_ms integer)
RETURNS jsonb
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_n integer := (SELECT (value #>> '{}')::integer FROM {{schema}}.queue_storage_meta WHERE key = 'queue_ring_slots');
  v_m integer := (SELECT (value #>> '{}')::integer FROM {{schema}}.queue_storage_meta WHERE key = 'claim_ring_slots');
  v_old_timeout text := current_setting('lock_timeout');
  v_gen bigint;
  v_cur smallint;
  v_slot smallint;
  v_rotated_at timestamptz;
  v_blocker text;
  v_queue_pruned integer[] := '{}';
  v_claim_pruned integer[] := '{}';
  v_skipped jsonb := '[]'::jsonb;
  v_queue_rotated boolean := false;
  v_claim_rotated boolean := false;
  v_terminal bigint := 0;
  v_carried bigint := 0;
  v_n_carried bigint;
  v_folded bigint;
  v_qgen bigint;
  v_qcur smallint;
  v_qrotated_at timestamptz;
  v_rows bigint;
  v_stones bigint;
  v_open boolean;
  v_q_slots smallint[] := '{}';
  v_q_blockers text[] := '{}';
  v_q_rows bigint[] := '{}';
  v_q_stones bigint[] := '{}';
BEGIN
  IF NOT pg_try_advisory_xact_lock({{schema}}.lock_space(5), 0) THEN
    RETURN jsonb_build_object('skipped', jsonb_build_array(jsonb_build_object('ring', 'queue', 'slot', -1,
      'reason', 'another maintainer is running')));
  END IF;
  PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);

  -- The queue ring's gates, before any lock: its sealed slots oldest first, up to the first that cannot go
  -- (one that waits only for claim receipts is kept: the claim ring's prune below may remove them). Each slot's
  -- gate and its row counts are read in one snapshot.
  SELECT generation, slot, rotated_at INTO v_qgen, v_qcur, v_qrotated_at
  FROM {{schema}}.queue_ring_rotations ORDER BY generation DESC LIMIT 1;
  FOR k IN 1..v_n - 1 LOOP
    v_slot := ((v_qcur + k) % v_n)::smallint;
    CONTINUE WHEN {{schema}}.queue_slot_empty(v_slot);
    SELECT {{schema}}.queue_slot_blocker(v_slot),
      (SELECT count(*) FROM {{schema}}.ready_entries r WHERE r.ready_slot = v_slot),
      (SELECT count(*) FROM {{schema}}.ready_tombstones t WHERE t.ready_slot = v_slot)
    INTO v_blocker, v_rows, v_stones;
    v_q_slots := v_q_slots || v_slot;
    v_q_blockers := v_q_blockers || v_blocker;
    v_q_rows := v_q_rows || v_rows;
    v_q_stones := v_q_stones || v_stones;
    EXIT WHEN v_blocker IS NOT NULL;
  END LOOP;

  -- Claim ring first: a queue-ring slot is prunable only once no receipt points at it.
  SELECT generation, slot, rotated_at INTO v_gen, v_cur, v_rotated_at
  FROM {{schema}}.claim_ring_rotations ORDER BY generation DESC LIMIT 1;
  FOR k IN 1..v_m - 1 LOOP
    v_slot := ((v_cur + k) % v_m)::smallint;
    -- The gate before any lock, with the slot's receipt count in the same snapshot.
    SELECT (SELECT count(*) FROM {{schema}}.claim_batches cb WHERE cb.claim_slot = v_slot),
      {{schema}}.claim_slot_open(v_slot)
    INTO v_rows, v_open;
    CONTINUE WHEN v_rows = 0;
    IF v_open THEN
      v_skipped := v_skipped || jsonb_build_object('ring', 'claim', 'slot', v_slot, 'reason', 'an open attempt');
      EXIT;
    END IF;
    BEGIN
      -- Every lane with a receipt here: hold its claim lock, so no claimer reads the cursor while the slot
      -- disappears, and keep the lane's cursor in claimed_floor.
      PERFORM pg_advisory_xact_lock({{schema}}.lock_space(2), x.lane_id)
      FROM (SELECT DISTINCT lane_id FROM {{schema}}.claim_batches WHERE claim_slot = v_slot ORDER BY 1) x;
      EXECUTE format('LOCK TABLE %s.%I IN ACCESS EXCLUSIVE MODE', '{{schema}}', 'claim_batches_' || v_slot);
      -- Again only if receipts arrived since (from a claimer that read this slot as current before it rotated).
      IF (SELECT count(*) FROM {{schema}}.claim_batches cb WHERE cb.claim_slot = v_slot) <> v_rows
         AND {{schema}}.claim_slot_open(v_slot) THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'an open attempt';
      END IF;
      UPDATE {{schema}}.lanes l SET claimed_floor = m.max_seq
      FROM (SELECT lane_id, max(max_seq) AS max_seq FROM {{schema}}.claim_batches WHERE claim_slot = v_slot GROUP BY 1) m
      WHERE l.lane_id = m.lane_id AND l.claimed_floor < m.max_seq;
      EXECUTE format('TRUNCATE %s.%I', '{{schema}}', 'claim_batches_' || v_slot);
      v_claim_pruned := v_claim_pruned || v_slot::integer;
    EXCEPTION
      WHEN lock_not_available THEN
        v_skipped := v_skipped || jsonb_build_object('ring', 'claim', 'slot', v_slot, 'reason', 'lock contention');
        EXIT;
      WHEN raise_exception THEN
        v_skipped := v_skipped || jsonb_build_object('ring', 'claim', 'slot', v_slot, 'reason', SQLERRM);
        EXIT;
    END;
  END LOOP;
  IF now() - v_rotated_at >= p_claim_rotate_ms * interval '1 millisecond'
     AND NOT EXISTS (SELECT 1 FROM {{schema}}.claim_batches WHERE claim_slot = ((v_cur + 1) % v_m)::smallint)
     AND (p_claim_rotate_ms = 0 OR EXISTS (SELECT 1 FROM {{schema}}.claim_batches WHERE claim_slot = v_cur)) THEN
    INSERT INTO {{schema}}.claim_ring_rotations (generation, slot) VALUES (v_gen + 1, ((v_cur + 1) % v_m)::smallint)
    ON CONFLICT DO NOTHING;
    DELETE FROM {{schema}}.claim_ring_rotations WHERE generation < v_gen + 1 - v_m;
    v_claim_rotated := true;
  END IF;

  -- Queue ring: oldest sealed slot first, as gated above; stop at the first that cannot go (newer facts must
  -- never be pruned before older ones they supersede).
  v_gen := v_qgen;
  v_cur := v_qcur;
  v_rotated_at := v_qrotated_at;
  FOR i IN 1..cardinality(v_q_slots) LOOP
    v_slot := v_q_slots[i];
    v_blocker := v_q_blockers[i];
    IF v_blocker = 'claim receipts still point at it'
       AND NOT EXISTS (SELECT 1 FROM {{schema}}.claim_batches cb WHERE v_slot = ANY (cb.ready_slots)) THEN
      v_blocker := NULL;
    END IF;
    IF v_blocker IS NOT NULL THEN
      v_skipped := v_skipped || jsonb_build_object('ring', 'queue', 'slot', v_slot, 'reason', v_blocker);
      EXIT;
    END IF;
    BEGIN
      EXECUTE format('LOCK TABLE %1$s.%2$I, %1$s.%3$I, %1$s.%4$I, %1$s.%5$I, %1$s.%6$I IN ACCESS EXCLUSIVE MODE',
        '{{schema}}', 'ready_entries_' || v_slot, 'ready_tombstones_' || v_slot, 'done_entries_' || v_slot,
        'completion_batches_' || v_slot, 'closures_' || v_slot);
      -- Gates again, in a fresh snapshot now that nothing else can write or read the slot, if its rows changed.
      IF (SELECT count(*) FROM {{schema}}.ready_entries r WHERE r.ready_slot = v_slot) <> v_q_rows[i]
         OR (SELECT count(*) FROM {{schema}}.ready_tombstones t WHERE t.ready_slot = v_slot) <> v_q_stones[i] THEN
        v_blocker := {{schema}}.queue_slot_blocker(v_slot);
        IF v_blocker IS NOT NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = v_blocker;
        END IF;
      END IF;
      -- Carry failed and cancelled jobs inside retention forward into the current slot, counts with them: only
      -- when the slot holds such a fact (reading the read model costs time linear in the whole ring).
      IF EXISTS (SELECT 1 FROM {{schema}}.done_entries d
                 WHERE d.ready_slot = v_slot AND d.state IN ('failed', 'cancelled')
                   AND d.finalized_at > now() - p_failed_ms * interval '1 millisecond') THEN
        WITH keep AS (
          SELECT j.* FROM {{schema}}.job_rows(NULL) j
          WHERE j.ready_slot = v_slot AND j.state IN ('failed', 'cancelled')
            AND j.finalized_at > now() - p_failed_ms * interval '1 millisecond'
        ), bodies AS (
          INSERT INTO {{schema}}.ready_entries (ready_slot, id, lane_id, lane_seq, kind, queue, priority, args, attempt,
            max_attempts, run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states,
            created_at)
          SELECT v_cur, r.id, r.lane_id, r.lane_seq, r.kind, r.queue, r.priority, r.args, r.attempt, r.max_attempts,
            r.run_lease, r.run_at, r.attempt_timeout_ms, r.tags, r.metadata, r.errors, r.unique_key, r.unique_states,
            r.created_at
          FROM {{schema}}.ready_entries r JOIN keep k ON r.ready_slot = v_slot AND r.id = k.id
          RETURNING 1
        ), stones AS (
          INSERT INTO {{schema}}.ready_tombstones (ready_slot, id, lane_seq, claimed, created_at)
          SELECT v_cur, t.id, t.lane_seq, t.claimed, t.created_at
          FROM {{schema}}.ready_tombstones t JOIN keep k ON t.ready_slot = v_slot AND t.id = k.id
          RETURNING 1
        ), closed AS (
          INSERT INTO {{schema}}.closures (ready_slot, id, run_lease, outcome, closed_at)
          SELECT v_cur, c.id, c.run_lease, c.outcome, c.closed_at
          FROM {{schema}}.closures c JOIN keep k ON c.ready_slot = v_slot AND c.id = k.id
          RETURNING 1
        ), facts AS (
          INSERT INTO {{schema}}.done_entries (ready_slot, id, seq, body_seq, state, attempt, run_lease, errors,
            attempted_at, finalized_at)
          SELECT v_cur, d.id, d.seq, d.body_seq, d.state, d.attempt, d.run_lease, d.errors, d.attempted_at, d.finalized_at
          FROM {{schema}}.done_entries d JOIN keep k ON d.ready_slot = v_slot AND d.id = k.id
          RETURNING 1
        ), moved AS (
          SELECT {{schema}}.count_terminal(
            array_agg(x.s ORDER BY x.s), array_agg(x.q ORDER BY x.s), array_agg(x.p ORDER BY x.s),
            array_agg(x.st ORDER BY x.s), array_agg(x.d ORDER BY x.s))
          FROM (
            SELECT v_cur AS s, k.queue AS q, k.priority AS p, k.state AS st, 1::bigint AS d FROM keep k
            UNION ALL
            SELECT v_slot, k.queue, k.priority, k.state, -1::bigint FROM keep k
          ) x
          HAVING count(*) > 0
        )
        SELECT count(*) INTO v_n_carried FROM keep
        WHERE (SELECT count(*) FROM bodies) >= 0 AND (SELECT count(*) FROM stones) >= 0
          AND (SELECT count(*) FROM closed) >= 0 AND (SELECT count(*) FROM facts) >= 0
          AND (SELECT count(*) FROM moved) >= 0;
        v_carried := v_carried + v_n_carried;
      END IF;
      -- A unique key held by a job that leaves with this slot (none of its rows lives on in another slot, in
      -- deferred or in the DLQ) is released, as deleting the job releases it under the canonical engine.
      DELETE FROM {{schema}}.unique_claims u
      WHERE u.job_id IN (SELECT r.id FROM {{schema}}.ready_entries r WHERE r.ready_slot = v_slot)
        AND NOT EXISTS (SELECT 1 FROM {{schema}}.ready_entries o WHERE o.id = u.job_id AND o.ready_slot <> v_slot)
        AND NOT EXISTS (SELECT 1 FROM {{schema}}.deferred_jobs d WHERE d.id = u.job_id)
        AND NOT EXISTS (SELECT 1 FROM {{schema}}.dlq_entries q WHERE q.id = u.job_id);
      -- Fold what leaves into the rollups and drop the slot's counters, then truncate: one transaction.
      SELECT coalesce(sum(count), 0) INTO v_folded FROM {{schema}}.queue_terminal_live_counts WHERE ready_slot = v_slot;
      INSERT INTO {{schema}}.queue_terminal_rollups AS r (queue, priority, state, count)
      SELECT queue, priority, state, sum(count) FROM {{schema}}.queue_terminal_live_counts
      WHERE ready_slot = v_slot GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
      ON CONFLICT (queue, priority, state) DO UPDATE SET count = r.count + excluded.count;
      DELETE FROM {{schema}}.queue_terminal_live_counts WHERE ready_slot = v_slot;
      v_terminal := v_terminal + v_folded;
      EXECUTE format('TRUNCATE %1$s.%2$I, %1$s.%3$I, %1$s.%4$I, %1$s.%5$I, %1$s.%6$I',
        '{{schema}}', 'ready_entries_' || v_slot, 'ready_tombstones_' || v_slot, 'done_entries_' || v_slot,
        'completion_batches_' || v_slot, 'closures_' || v_slot);
      v_queue_pruned := v_queue_pruned || v_slot::integer;
    EXCEPTION
      WHEN lock_not_available THEN
        v_skipped := v_skipped || jsonb_build_object('ring', 'queue', 'slot', v_slot, 'reason', 'lock contention');
        EXIT;
      WHEN raise_exception THEN
        v_skipped := v_skipped || jsonb_build_object('ring', 'queue', 'slot', v_slot, 'reason', SQLERRM);
        EXIT;
    END;
  END LOOP;
  IF now() - v_rotated_at >= p_queue_rotate_ms * interval '1 millisecond'
     AND {{schema}}.queue_slot_empty(((v_cur + 1) % v_n)::smallint)
     AND (p_queue_rotate_ms = 0 OR EXISTS (SELECT 1 FROM {{schema}}.ready_entries WHERE ready_slot = v_cur)) THEN
    INSERT INTO {{schema}}.queue_ring_rotations (generation, slot) VALUES (v_gen + 1, ((v_cur + 1) % v_n)::smallint)
    ON CONFLICT DO NOTHING;
    DELETE FROM {{schema}}.queue_ring_rotations WHERE generation < v_gen + 1 - v_n;
    v_queue_rotated := true;
  END IF;

  -- Heartbeats of attempts that have ended.
  DELETE FROM {{schema}}.attempt_state a
  WHERE EXISTS (SELECT 1 FROM {{schema}}.closures c WHERE c.id = a.id AND c.run_lease = a.run_lease);

  PERFORM set_config('lock_timeout', v_old_timeout, true);
  RETURN jsonb_build_object('queue_rotated', v_queue_rotated, 'claim_rotated', v_claim_rotated,
    'queue_pruned', to_jsonb(v_queue_pruned), 'claim_pruned', to_jsonb(v_claim_pruned),
    'terminal_pruned', v_terminal, 'carried', v_carried, 'skipped', v_skipped);
END
$$;

