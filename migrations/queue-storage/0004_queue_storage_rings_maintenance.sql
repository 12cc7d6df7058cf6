-- Queue-storage ring maintenance for schema {{schema}}: prune settled slots (oldest first, gates checked again under ACCESS EXCLUSIVE with a short lock timeout, failed rows inside retention carried forward, counters folded into rollups) and rotate both rings.

-- Whether queue-ring slot p_slot holds nothing at all (no rows in any family, no counters).
CREATE FUNCTION {{schema}}.queue_slot_empty(p_slot smallint) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT NOT EXISTS (SELECT 1 FROM {{schema}}.ready_entries WHERE ready_slot = p_slot)
     AND NOT EXISTS (SELECT 1 FROM {{schema}}.ready_tombstones WHERE ready_slot = p_slot)
     AND NOT EXISTS (SELECT 1 FROM {{schema}}.done_entries WHERE ready_slot = p_slot)
     AND NOT EXISTS (SELECT 1 FROM {{schema}}.completion_batches WHERE ready_slot = p_slot)
     AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures WHERE ready_slot = p_slot)
     AND NOT EXISTS (SELECT 1 FROM {{schema}}.queue_terminal_live_counts WHERE ready_slot = p_slot)
$$;

-- Why queue-ring slot p_slot cannot be pruned yet (NULL when it can): a pending job, an open attempt, or a
-- receipt in the claim ring that still points at it.
CREATE FUNCTION {{schema}}.queue_slot_blocker(p_slot smallint) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN EXISTS (
      SELECT 1 FROM {{schema}}.ready_entries r
      LEFT JOIN {{schema}}.ready_tombstones t ON t.ready_slot = r.ready_slot AND t.id = r.id AND t.lane_seq = r.lane_seq
      WHERE r.ready_slot = p_slot AND t.id IS NULL AND r.lane_seq > {{schema}}.lane_cursor(r.lane_id))
      THEN 'a pending job'
    WHEN EXISTS (
      SELECT 1 FROM {{schema}}.ready_entries r
      LEFT JOIN {{schema}}.ready_tombstones t ON t.ready_slot = r.ready_slot AND t.id = r.id AND t.lane_seq = r.lane_seq
      WHERE r.ready_slot = p_slot AND (t.claimed OR (t.id IS NULL AND r.lane_seq <= {{schema}}.lane_cursor(r.lane_id)))
        AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                        WHERE c.ready_slot = r.ready_slot AND c.id = r.id AND c.run_lease = r.run_lease + 1))
      THEN 'an open attempt'
    WHEN EXISTS (SELECT 1 FROM {{schema}}.claim_batches cb WHERE p_slot = ANY (cb.ready_slots))
      THEN 'claim receipts still point at it'
  END
$$;

-- Rotates and prunes both rings once (the leader's retention task). p_queue_rotate_ms / p_claim_rotate_ms: the
-- age at which the current slot gives way to the next (0 forces); p_failed_ms: failed and cancelled jobs
-- younger than this are carried forward instead of pruned; p_lock_timeout_ms: how long a TRUNCATE may wait for
-- its ACCESS EXCLUSIVE lock before the slot is skipped. A slot that cannot be pruned stops the ring: the current
-- slot keeps growing instead of anything being lost. Returns a JSON report.
CREATE FUNCTION {{schema}}.maintain_rings(p_queue_rotate_ms bigint, p_claim_rotate_ms bigint, p_failed_ms bigint,
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
BEGIN
  IF NOT pg_try_advisory_xact_lock({{schema}}.lock_space(5), 0) THEN
    RETURN jsonb_build_object('skipped', jsonb_build_array(jsonb_build_object('ring', 'queue', 'slot', -1,
      'reason', 'another maintainer is running')));
  END IF;
  PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);

  -- Claim ring first: a queue-ring slot is prunable only once no receipt points at it.
  SELECT generation, slot, rotated_at INTO v_gen, v_cur, v_rotated_at
  FROM {{schema}}.claim_ring_rotations ORDER BY generation DESC LIMIT 1;
  FOR k IN 1..v_m - 1 LOOP
    v_slot := ((v_cur + k) % v_m)::smallint;
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM {{schema}}.claim_batches WHERE claim_slot = v_slot);
    BEGIN
      -- Every lane with a receipt here: hold its claim lock, so no claimer reads the cursor while the slot
      -- disappears, and keep the lane's cursor in claimed_floor.
      PERFORM pg_advisory_xact_lock({{schema}}.lock_space(2), x.lane_id)
      FROM (SELECT DISTINCT lane_id FROM {{schema}}.claim_batches WHERE claim_slot = v_slot ORDER BY 1) x;
      EXECUTE format('LOCK TABLE %s.%I IN ACCESS EXCLUSIVE MODE', '{{schema}}', 'claim_batches_' || v_slot);
      IF EXISTS (
        SELECT 1 FROM {{schema}}.claim_batches cb
        CROSS JOIN LATERAL unnest(cb.ids, cb.leases, cb.ready_slots) AS u(id, lease, rslot)
        WHERE cb.claim_slot = v_slot
          AND NOT EXISTS (SELECT 1 FROM {{schema}}.closures c
                          WHERE c.ready_slot = u.rslot AND c.id = u.id AND c.run_lease = u.lease)
      ) THEN
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

  -- Queue ring: oldest sealed slot first; stop at the first that cannot go (newer facts must never be pruned
  -- before older ones they supersede).
  SELECT generation, slot, rotated_at INTO v_gen, v_cur, v_rotated_at
  FROM {{schema}}.queue_ring_rotations ORDER BY generation DESC LIMIT 1;
  FOR k IN 1..v_n - 1 LOOP
    v_slot := ((v_cur + k) % v_n)::smallint;
    CONTINUE WHEN {{schema}}.queue_slot_empty(v_slot);
    v_blocker := {{schema}}.queue_slot_blocker(v_slot);
    IF v_blocker IS NOT NULL THEN
      v_skipped := v_skipped || jsonb_build_object('ring', 'queue', 'slot', v_slot, 'reason', v_blocker);
      EXIT;
    END IF;
    BEGIN
      EXECUTE format('LOCK TABLE %1$s.%2$I, %1$s.%3$I, %1$s.%4$I, %1$s.%5$I, %1$s.%6$I IN ACCESS EXCLUSIVE MODE',
        '{{schema}}', 'ready_entries_' || v_slot, 'ready_tombstones_' || v_slot, 'done_entries_' || v_slot,
        'completion_batches_' || v_slot, 'closures_' || v_slot);
      -- Gates again, in a fresh snapshot, now that nothing else can write or read the slot.
      v_blocker := {{schema}}.queue_slot_blocker(v_slot);
      IF v_blocker IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = v_blocker;
      END IF;
      -- Carry failed and cancelled jobs inside retention forward into the current slot, counts with them.
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

-- Retention of failed and cancelled jobs: up to p_limit of them finalized more than p_failed_ms ago get a purge
-- fact (they leave the read model and their counters), without waiting for their slot. Completed jobs leave
-- with the ring instead. Returns how many.
CREATE FUNCTION {{schema}}.purge_finished(p_failed_ms bigint, p_limit integer) RETURNS integer
LANGUAGE sql AS $$
  WITH doomed AS (
    SELECT d.*, r.queue, r.priority FROM {{schema}}.done_entries d
    JOIN {{schema}}.ready_entries r ON r.ready_slot = d.ready_slot AND r.id = d.id AND r.lane_seq = d.body_seq
    WHERE d.state IN ('failed', 'cancelled') AND d.finalized_at < now() - p_failed_ms * interval '1 millisecond'
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.done_entries n WHERE n.id = d.id AND n.seq > d.seq)
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.ready_entries n WHERE n.id = d.id AND n.lane_seq > d.seq)
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.deferred_jobs n WHERE n.id = d.id)
    ORDER BY d.finalized_at
    LIMIT p_limit
  ), facts AS (
    INSERT INTO {{schema}}.done_entries (ready_slot, id, seq, body_seq, state, attempt, run_lease, errors, attempted_at,
      finalized_at)
    SELECT d.ready_slot, d.id, nextval('{{schema}}.event_seq'), d.body_seq, 'purged', d.attempt, d.run_lease, d.errors,
      d.attempted_at, now()
    FROM doomed d
    RETURNING 1
  ), counted AS (
    SELECT {{schema}}.count_terminal(array_agg(d.ready_slot), array_agg(d.queue), array_agg(d.priority),
      array_agg(d.state), array_agg(-1::bigint))
    FROM doomed d HAVING count(*) > 0
  ), released AS (
    DELETE FROM {{schema}}.unique_claims u USING doomed d WHERE u.job_id = d.id RETURNING 1
  )
  SELECT count(*)::integer FROM doomed
  WHERE (SELECT count(*) FROM facts) >= 0 AND (SELECT count(*) FROM counted) >= 0
    AND (SELECT count(*) FROM released) >= 0
$$;
