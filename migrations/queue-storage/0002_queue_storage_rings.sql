-- Queue-storage rings for schema {{schema}}: job ids, queue ring ({{queue_ring_slots}} slots) and claim ring ({{claim_ring_slots}} slots) partitions, deferred jobs, DLQ, attempt state, unique claims, lanes, ring ledgers, terminal counters.
-- awa:partitions queue_ring_slots ready_entries ready_tombstones done_entries completion_batches closures
-- awa:partitions claim_ring_slots claim_batches
--
-- Reclaim rule: per-job rows are only INSERTed into ring partitions and leave by TRUNCATE of a settled
-- slot; every other table is bounded by something other than traffic (its COMMENT names the bound).
-- Ring sizes are template parameters of the set, fixed when a schema is installed: queue_ring_slots (default 16)
-- and claim_ring_slots (default 8), rendered as integer literals and recorded in queue_storage_meta and in the
-- migrator's ledger.

-- Job ids: shared with the canonical engine (awa.jobs_id_seq) when it is installed, so ids never collide
-- across engines in one database; otherwise this schema's own sequence.
CREATE SEQUENCE {{schema}}.job_id_seq;

DO $do$
BEGIN
  IF to_regclass('awa.jobs_id_seq') IS NOT NULL THEN
    EXECUTE format('CREATE FUNCTION %s.next_job_id() RETURNS bigint LANGUAGE sql VOLATILE AS %L',
      '{{schema}}', 'SELECT nextval(''awa.jobs_id_seq'')');
  ELSE
    EXECUTE format('CREATE FUNCTION %s.next_job_id() RETURNS bigint LANGUAGE sql VOLATILE AS %L',
      '{{schema}}', format('SELECT nextval(%L)', '{{schema}}.job_id_seq'));
  END IF;
END
$do$;

-- Orders every fact about a job (ready rows, terminal rows, completions, deferrals): the newest wins. Ready
-- rows take their lane_seq from it too, under the lane's enqueue lock, so within a lane seq order is
-- visibility order. A sequence writes no heap tuples.
CREATE SEQUENCE {{schema}}.event_seq;

INSERT INTO {{schema}}.queue_storage_meta (key, value) VALUES
  ('queue_ring_slots', to_jsonb({{queue_ring_slots}})), ('claim_ring_slots', to_jsonb({{claim_ring_slots}}));

COMMENT ON TABLE {{schema}}.queue_storage_meta IS 'awa queue-storage metadata (version, ring sizes). Reclaim kind: warm (bounded by settings keys).';

CREATE TABLE {{schema}}.queue_settings (
  name text PRIMARY KEY CONSTRAINT queue_settings_name_length CHECK (char_length(name) BETWEEN 1 AND 128),
  paused boolean NOT NULL DEFAULT false,
  paused_at timestamptz,
  dlq_enabled boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {{schema}}.queue_settings IS 'awa queue-storage queue settings (pause, DLQ); absent row = defaults. Reclaim kind: warm (bounded by queues).';

-- A lane is (queue, priority). Its enqueue cursor is event_seq under the lane's advisory lock; its claim
-- cursor is the newest claim_batches.max_seq of the lane, floored by claimed_floor once the claim ring has
-- pruned the batch that held it. No row here is updated per job or per claim.
CREATE TABLE {{schema}}.lanes (
  lane_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue text NOT NULL,
  priority smallint NOT NULL,
  claimed_floor bigint NOT NULL DEFAULT 0,
  CONSTRAINT lanes_queue_priority UNIQUE (queue, priority)
);
COMMENT ON TABLE {{schema}}.lanes IS 'awa queue-storage lanes (queue, priority) and claim floors. Reclaim kind: warm (bounded by lanes; updated only by claim-ring prune).';

-- Rings advance by appending a generation (compare-and-set on the primary key); slot = generation mod size.
CREATE TABLE {{schema}}.queue_ring_rotations (
  generation bigint PRIMARY KEY,
  slot smallint NOT NULL CHECK (slot BETWEEN 0 AND {{queue_ring_slots}} - 1),
  rotated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {{schema}}.queue_ring_rotations IS 'awa queue-storage queue-ring rotations ledger (append-only). Reclaim kind: warm (bounded by ring size: generations older than one lap are deleted at rotation).';
INSERT INTO {{schema}}.queue_ring_rotations (generation, slot) VALUES (0, 0);

CREATE TABLE {{schema}}.claim_ring_rotations (
  generation bigint PRIMARY KEY,
  slot smallint NOT NULL CHECK (slot BETWEEN 0 AND {{claim_ring_slots}} - 1),
  rotated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {{schema}}.claim_ring_rotations IS 'awa queue-storage claim-ring rotations ledger (append-only). Reclaim kind: warm (bounded by ring size: generations older than one lap are deleted at rotation).';
INSERT INTO {{schema}}.claim_ring_rotations (generation, slot) VALUES (0, 0);

-- Queue ring: the immutable body of every ready (claimable) job row. A job gets a fresh row each time it
-- becomes available (insert, promotion, release, retry now); a row is never updated or reused.
CREATE TABLE {{schema}}.ready_entries (
  ready_slot smallint NOT NULL,
  id bigint NOT NULL,
  lane_id integer NOT NULL,
  lane_seq bigint NOT NULL,
  kind text NOT NULL,
  queue text NOT NULL,
  priority smallint NOT NULL,
  args jsonb NOT NULL,
  attempt integer NOT NULL,
  max_attempts integer NOT NULL,
  run_lease bigint NOT NULL,
  run_at timestamptz NOT NULL,
  attempt_timeout_ms integer,
  tags text[] NOT NULL,
  metadata jsonb NOT NULL,
  errors jsonb,
  unique_key bytea,
  unique_states text[],
  created_at timestamptz NOT NULL
) PARTITION BY LIST (ready_slot);
COMMENT ON TABLE {{schema}}.ready_entries IS 'awa queue-storage ready job rows (queue ring). Reclaim kind: ring (truncated per settled slot).';
CREATE INDEX ready_entries_lane ON {{schema}}.ready_entries (lane_id, lane_seq);
CREATE INDEX ready_entries_id ON {{schema}}.ready_entries (id);

-- Marks a pending ready row as spent without a claim (cancel, purge). Claims skip tombstoned rows.
CREATE TABLE {{schema}}.ready_tombstones (
  ready_slot smallint NOT NULL,
  id bigint NOT NULL,
  lane_seq bigint NOT NULL,
  -- true: the row was claimed out of lane order (a claim filtered by kind) rather than cancelled or purged.
  claimed boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY LIST (ready_slot);
COMMENT ON TABLE {{schema}}.ready_tombstones IS 'awa queue-storage tombstones of pending ready rows (queue ring). Reclaim kind: ring (truncated with its slot).';
CREATE UNIQUE INDEX ready_tombstones_row ON {{schema}}.ready_tombstones (ready_slot, id, lane_seq);

-- Terminal facts other than plain completions (failed, cancelled, purged), in the slot of the ready row that
-- holds the job's body (body_seq = its lane_seq).
CREATE TABLE {{schema}}.done_entries (
  ready_slot smallint NOT NULL,
  id bigint NOT NULL,
  seq bigint NOT NULL,
  body_seq bigint NOT NULL,
  state text NOT NULL CHECK (state IN ('failed', 'cancelled', 'purged')),
  attempt integer NOT NULL,
  run_lease bigint NOT NULL,
  errors jsonb,
  attempted_at timestamptz,
  finalized_at timestamptz NOT NULL
) PARTITION BY LIST (ready_slot);
COMMENT ON TABLE {{schema}}.done_entries IS 'awa queue-storage terminal facts: failed, cancelled, purged (queue ring). Reclaim kind: ring (truncated per settled slot; failed rows inside retention are carried forward).';
CREATE INDEX done_entries_id ON {{schema}}.done_entries (id);

-- Plain successful completions: one row per completion statement per slot, with arrays of ids and leases.
CREATE TABLE {{schema}}.completion_batches (
  ready_slot smallint NOT NULL,
  seq bigint NOT NULL,
  ids bigint[] NOT NULL,
  leases bigint[] NOT NULL,
  completed_at timestamptz NOT NULL
) PARTITION BY LIST (ready_slot);
COMMENT ON TABLE {{schema}}.completion_batches IS 'awa queue-storage compact completions, one row per batch (queue ring). Reclaim kind: ring (truncated per settled slot).';

-- Evidence that an attempt ended, one row per attempt, in the slot of the attempt's ready row. The unique
-- index makes a completion racing a rescue (or a cancel) end exactly one way.
CREATE TABLE {{schema}}.closures (
  ready_slot smallint NOT NULL,
  id bigint NOT NULL,
  run_lease bigint NOT NULL,
  outcome text NOT NULL,
  closed_at timestamptz NOT NULL
) PARTITION BY LIST (ready_slot);
COMMENT ON TABLE {{schema}}.closures IS 'awa queue-storage attempt closures (queue ring). Reclaim kind: ring (truncated with its slot).';
CREATE UNIQUE INDEX closures_attempt ON {{schema}}.closures (id, run_lease, ready_slot);

-- Claim ring: one receipt per claim call and lane, arrays of (id, new run_lease, ready slot, own timeout).
-- max_seq is the lane cursor the receipt moves to; 0 for a claim taken out of lane order (by kind).
CREATE TABLE {{schema}}.claim_batches (
  claim_slot smallint NOT NULL,
  lane_id integer NOT NULL,
  max_seq bigint NOT NULL,
  claimed_at timestamptz NOT NULL,
  default_timeout_ms integer NOT NULL,
  ids bigint[] NOT NULL,
  leases bigint[] NOT NULL,
  ready_slots smallint[] NOT NULL,
  timeouts integer[] NOT NULL
) PARTITION BY LIST (claim_slot);
COMMENT ON TABLE {{schema}}.claim_batches IS 'awa queue-storage claim receipts (claim ring). Reclaim kind: ring (truncated once every receipt in the slot has a closure).';
CREATE INDEX claim_batches_lane ON {{schema}}.claim_batches (lane_id, max_seq);

-- One child per slot: slots 0 .. queue_ring_slots - 1 of the queue-ring tables, 0 .. claim_ring_slots - 1 of the
-- claim ring (the awa:partitions directives above name them for the migrator).
DO $do$
DECLARE
  v_table text;
  v_slots integer;
BEGIN
  FOR v_table, v_slots IN
    SELECT t, {{queue_ring_slots}} FROM unnest(ARRAY['ready_entries', 'ready_tombstones', 'done_entries',
      'completion_batches', 'closures']) AS t
    UNION ALL SELECT 'claim_batches', {{claim_ring_slots}}
  LOOP
    FOR v_slot IN 0 .. v_slots - 1 LOOP
      EXECUTE format('CREATE TABLE %1$s.%2$I PARTITION OF %1$s.%3$I FOR VALUES IN (%4$s)',
        '{{schema}}', v_table || '_' || v_slot, v_table, v_slot);
      EXECUTE format('COMMENT ON TABLE %1$s.%2$I IS %3$L', '{{schema}}', v_table || '_' || v_slot,
        format('awa queue-storage %s slot %s. Reclaim kind: ring (truncated per settled slot).', v_table, v_slot));
    END LOOP;
  END LOOP;
END
$do$;

-- Scheduled and retryable jobs (a future run_at), with their whole body; promotion deletes the row and
-- appends a fresh ready row.
CREATE TABLE {{schema}}.deferred_jobs (
  id bigint PRIMARY KEY,
  seq bigint NOT NULL,
  state text NOT NULL CHECK (state IN ('scheduled', 'retryable')),
  kind text NOT NULL,
  queue text NOT NULL,
  priority smallint NOT NULL,
  args jsonb NOT NULL,
  attempt integer NOT NULL,
  max_attempts integer NOT NULL,
  run_lease bigint NOT NULL,
  run_at timestamptz NOT NULL,
  attempt_timeout_ms integer,
  tags text[] NOT NULL,
  metadata jsonb NOT NULL,
  errors jsonb,
  unique_key bytea,
  unique_states text[],
  attempted_at timestamptz,
  created_at timestamptz NOT NULL
);
COMMENT ON TABLE {{schema}}.deferred_jobs IS 'awa queue-storage scheduled and retryable jobs. Reclaim kind: backlog (row-vacuumed; bounded by the scheduled/retryable backlog).';
CREATE INDEX deferred_jobs_due ON {{schema}}.deferred_jobs (run_at);
CREATE INDEX deferred_jobs_queue ON {{schema}}.deferred_jobs (queue, kind);

CREATE TABLE {{schema}}.dlq_entries (
  id bigint PRIMARY KEY,
  kind text NOT NULL,
  queue text NOT NULL,
  args jsonb NOT NULL,
  priority smallint NOT NULL,
  attempt integer NOT NULL,
  max_attempts integer NOT NULL,
  run_lease bigint NOT NULL,
  attempt_timeout_ms integer,
  errors jsonb NOT NULL DEFAULT '[]'::jsonb,
  tags text[] NOT NULL,
  metadata jsonb NOT NULL,
  unique_key bytea,
  unique_states text[],
  reason text NOT NULL,
  created_at timestamptz NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {{schema}}.dlq_entries IS 'awa queue-storage dead-letter queue. Reclaim kind: backlog (row-vacuumed; bounded by the DLQ backlog).';
CREATE INDEX dlq_entries_queue ON {{schema}}.dlq_entries (queue, id);

-- Heartbeats of attempts that live longer than one heartbeat interval; short jobs never create a row.
CREATE TABLE {{schema}}.attempt_state (
  id bigint NOT NULL,
  run_lease bigint NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  PRIMARY KEY (id, run_lease)
);
COMMENT ON TABLE {{schema}}.attempt_state IS 'awa queue-storage heartbeats of long attempts. Reclaim kind: warm (bounded by in-flight long-running attempts; closed ones deleted by maintenance).';

-- Who holds a unique key: inserted at enqueue, deleted when the job leaves its unique states.
CREATE TABLE {{schema}}.unique_claims (
  unique_key bytea PRIMARY KEY,
  job_id bigint NOT NULL
);
COMMENT ON TABLE {{schema}}.unique_claims IS 'awa queue-storage unique key holders. Reclaim kind: warm (bounded by unique jobs holding keys).';
CREATE INDEX unique_claims_job ON {{schema}}.unique_claims (job_id);

-- Terminal jobs stored per (queue-ring slot, queue, priority, state): every terminal insert increments, every
-- removal decrements, in the same transaction; prune folds a slot into the rollups.
CREATE TABLE {{schema}}.queue_terminal_live_counts (
  ready_slot smallint NOT NULL,
  queue text NOT NULL,
  priority smallint NOT NULL,
  state text NOT NULL CHECK (state IN ('completed', 'failed', 'cancelled')),
  count bigint NOT NULL,
  PRIMARY KEY (ready_slot, queue, priority, state)
);
COMMENT ON TABLE {{schema}}.queue_terminal_live_counts IS 'awa queue-storage live terminal counters per ring slot. Reclaim kind: warm (bounded by slots x queues x priorities x terminal states).';

-- Terminal jobs whose rows were pruned from the ring (history no longer stored), per queue.
CREATE TABLE {{schema}}.queue_terminal_rollups (
  queue text NOT NULL,
  priority smallint NOT NULL,
  state text NOT NULL CHECK (state IN ('completed', 'failed', 'cancelled')),
  count bigint NOT NULL,
  PRIMARY KEY (queue, priority, state)
);
COMMENT ON TABLE {{schema}}.queue_terminal_rollups IS 'awa queue-storage pruned terminal totals per queue. Reclaim kind: warm (bounded by queues x priorities x terminal states).';

-- COPY target of the bulk insert path: a BEFORE INSERT trigger routes each row to enqueue and stores nothing.
CREATE TABLE {{schema}}.copy_inbox (
  kind text NOT NULL,
  queue text NOT NULL,
  args text NOT NULL,
  priority smallint NOT NULL,
  max_attempts integer NOT NULL,
  run_at timestamptz NOT NULL,
  attempt_timeout_ms integer,
  tags text[] NOT NULL,
  metadata text NOT NULL
);
COMMENT ON TABLE {{schema}}.copy_inbox IS 'awa queue-storage COPY entry point; rows are routed by a trigger and never stored. Reclaim kind: warm (bounded by zero rows: a trigger routes each row and stores none).';

