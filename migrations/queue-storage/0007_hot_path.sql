-- Hot-path speed for schema {{schema}}: the ring-slot and lane-cursor helpers become PL/pgSQL (a LANGUAGE sql function that is not inlined is planned again at every call, which cost more than its statement); producers also mark each lane they write as busy, so a claimer on an idle lane reads its settled bound without scanning pg_locks; claim runs fewer statements per lane and returns each job's ready slot, which completions pass back so each attempt is looked up in one ring partition rather than all of them. Results are unchanged; the two-argument complete_attempts of earlier clients still works.

-- The queue ring's current slot (newest generation).
CREATE OR REPLACE FUNCTION {{schema}}.current_queue_slot() RETURNS smallint
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT r.slot FROM {{schema}}.queue_ring_rotations r ORDER BY r.generation DESC LIMIT 1);
END
$$;

-- The claim ring's current slot (newest generation).
CREATE OR REPLACE FUNCTION {{schema}}.current_claim_slot() RETURNS smallint
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT r.slot FROM {{schema}}.claim_ring_rotations r ORDER BY r.generation DESC LIMIT 1);
END
$$;

-- A lane's claim cursor: the highest lane_seq any committed claim took (or the floor kept by claim prune).
CREATE OR REPLACE FUNCTION {{schema}}.lane_cursor(p_lane integer) RETURNS bigint
LANGUAGE plpgsql STABLE
-- Generic plan: the claim ring's partitions would otherwise be planned at every call.
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  RETURN greatest(
    (SELECT l.claimed_floor FROM {{schema}}.lanes l WHERE l.lane_id = p_lane),
    (SELECT max(cb.max_seq) FROM {{schema}}.claim_batches cb WHERE cb.lane_id = p_lane),
    0);
END
$$;

-- Busy lanes (advisory namespace 6, key = lane id). Besides its reservation (see 0003), a producer holds the
-- lane's busy lock in SHARE mode from before it draws the reservation until its transaction ends. A claimer
-- that gets the busy lock in exclusive mode without waiting knows no producer is in flight on the lane: every
-- value event_seq has handed out so far for the lane's rows came from a transaction that has ended, and a
-- producer that registers later waits (for microseconds: the claimer takes no other lock and reads one
-- sequence while it holds it) and then draws values above the one the claimer read. So the claimer's bound
-- is event_seq's last value, read under the lock, and it needs pg_locks only when the lane is busy.
CREATE OR REPLACE FUNCTION {{schema}}.lock_lanes(p_queues text[], p_priorities smallint[]) RETURNS void
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
    PERFORM pg_advisory_xact_lock_shared({{schema}}.lock_space(6), v_lane);
    v_res := nextval('{{schema}}.event_seq');
    PERFORM pg_advisory_xact_lock({{schema}}.lane_space(v_lane),
      ((v_res % 4294967296) - CASE WHEN v_res % 4294967296 >= 2147483648 THEN 4294967296 ELSE 0 END)::integer);
    v_held := v_held || ',' || v_mark;
    PERFORM set_config('awa_qs.lanes_in_flight', v_held, true);
  END LOOP;
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

-- Claims up to p_limit jobs of queue p_queue (kinds p_kinds, NULL for any), lanes in priority order; see 0003
-- for the window, the cursor prefix and the receipts. Same rows as before, in fewer statements per lane, plus
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
  IF p_limit <= 0 THEN
    RETURN;
  END IF;
  FOR v_lane IN
    SELECT l.lane_id FROM {{schema}}.lanes l
    WHERE l.queue = p_queue
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.queue_settings q WHERE q.name = p_queue AND q.paused)
    ORDER BY l.priority
  LOOP
    EXIT WHEN v_left <= 0;
    IF NOT pg_try_advisory_xact_lock({{schema}}.lock_space(2), v_lane) THEN
      CONTINUE WHEN NOT {{schema}}.lock_lane_claim(v_lane, 100);
    END IF;
    v_high := {{schema}}.lane_settled_upto(v_lane);
    -- The cursor (lane_cursor, inline) and the claim ring's current slot, in one statement.
    SELECT greatest(l.claimed_floor,
        (SELECT max(cb.max_seq) FROM {{schema}}.claim_batches cb WHERE cb.lane_id = v_lane), 0),
      (SELECT c.slot FROM {{schema}}.claim_ring_rotations c ORDER BY c.generation DESC LIMIT 1)
    INTO v_cursor, v_cslot
    FROM {{schema}}.lanes l WHERE l.lane_id = v_lane;
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
      p.attempt_timeout_ms, p.tags, p.metadata, date_part('epoch', p.created_at) * 1000, p.ready_slot
    FROM picked p
    WHERE (SELECT count(*) FROM receipt) >= 0 AND (SELECT count(*) FROM out_of_order) >= 0
    ORDER BY p.run_at, p.lane_seq;
    GET DIAGNOSTICS v_got = ROW_COUNT;
    v_left := v_left - v_got;
  END LOOP;
END
$$;

-- attempt_rows (0003) with each attempt's ready slot as given by claim (p_slots; NULL where unknown, e.g. from a
-- client that predates it): a known slot probes one ring partition, an unknown one probes every partition.
CREATE FUNCTION {{schema}}.attempt_rows(p_ids bigint[], p_leases bigint[], p_slots smallint[])
RETURNS SETOF {{schema}}.ready_entries
LANGUAGE sql STABLE AS $$
  WITH d AS (
    SELECT * FROM unnest(p_ids, p_leases, p_slots) AS d(id, run_lease, slot)
  ), cand AS MATERIALIZED (
    -- One index probe per attempt (OFFSET 0 keeps the planner from turning this into a scan of the ring).
    SELECT r.* FROM d
    CROSS JOIN LATERAL (
      SELECT r0.* FROM {{schema}}.ready_entries r0
      WHERE r0.ready_slot = d.slot AND r0.id = d.id AND r0.run_lease = d.run_lease - 1 OFFSET 0
    ) r
    WHERE d.slot IS NOT NULL
    UNION ALL
    SELECT r.* FROM d
    CROSS JOIN LATERAL (
      SELECT r0.* FROM {{schema}}.ready_entries r0 WHERE r0.id = d.id AND r0.run_lease = d.run_lease - 1 OFFSET 0
    ) r
    WHERE d.slot IS NULL
  ), cursors AS MATERIALIZED (
    -- One cursor read per lane, not per attempt.
    SELECT x.lane_id, {{schema}}.lane_cursor(x.lane_id) AS upto FROM (SELECT DISTINCT lane_id FROM cand) x
  )
  SELECT c.* FROM cand c
  JOIN cursors k ON k.lane_id = c.lane_id
  LEFT JOIN {{schema}}.ready_tombstones t ON t.ready_slot = c.ready_slot AND t.id = c.id AND t.lane_seq = c.lane_seq
  WHERE t.claimed OR (t.id IS NULL AND c.lane_seq <= k.upto)
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
