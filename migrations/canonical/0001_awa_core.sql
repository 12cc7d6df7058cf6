-- Canonical engine core: schema awa with the job table and states, queues, unique keys, the DLQ, runtime/engine state and the new-work NOTIFY.
CREATE SCHEMA IF NOT EXISTS awa;

COMMENT ON SCHEMA awa IS 'awa job queue: canonical engine tables, queue metadata, DLQ and runtime state.';

-- Job states. A dead-letter queue is a separate table (awa.dlq), not a state.
CREATE TYPE awa.job_state AS ENUM (
  'scheduled',
  'available',
  'running',
  'completed',
  'retryable',
  'failed',
  'cancelled',
  'waiting_external'
);

-- One mutable row per job. Every attempt is identified by (id, run_lease): a claim increments run_lease and
-- every later write for that attempt must match it, so a stale writer changes zero rows.
CREATE TABLE awa.jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CONSTRAINT jobs_kind_length CHECK (char_length(kind) BETWEEN 1 AND 128),
  queue text NOT NULL DEFAULT 'default' CONSTRAINT jobs_queue_length CHECK (char_length(queue) BETWEEN 1 AND 128),
  args jsonb NOT NULL DEFAULT '{}'::jsonb,
  state awa.job_state NOT NULL DEFAULT 'available',
  priority smallint NOT NULL DEFAULT 2 CONSTRAINT jobs_priority_range CHECK (priority BETWEEN 1 AND 4),
  attempt integer NOT NULL DEFAULT 0 CONSTRAINT jobs_attempt_nonnegative CHECK (attempt >= 0),
  max_attempts integer NOT NULL DEFAULT 25 CONSTRAINT jobs_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 1000),
  run_lease bigint NOT NULL DEFAULT 0 CONSTRAINT jobs_run_lease_nonnegative CHECK (run_lease >= 0),
  run_at timestamptz NOT NULL DEFAULT now(),
  attempted_at timestamptz,
  heartbeat_at timestamptz,
  deadline_at timestamptz,
  finalized_at timestamptz,
  -- Per-attempt deadline chosen at insert; NULL means the worker's default applies.
  attempt_timeout_ms integer CONSTRAINT jobs_attempt_timeout_positive CHECK (attempt_timeout_ms > 0),
  -- JSON array of {attempt, at, message, name?, kind}: every recorded error, oldest first. NULL when none.
  errors jsonb CONSTRAINT jobs_errors_array CHECK (errors IS NULL OR jsonb_typeof(errors) = 'array'),
  tags text[] NOT NULL DEFAULT '{}'::text[] CONSTRAINT jobs_tags_count CHECK (cardinality(tags) <= 20),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CONSTRAINT jobs_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
  -- Unique jobs: a digest of (kind, optional queue, canonical args, optional time bucket), held while the
  -- job's state is one of unique_states (enforced by jobs_unique_key below).
  unique_key bytea,
  unique_states awa.job_state[],
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT jobs_attempt_within_max CHECK (attempt <= max_attempts),
  CONSTRAINT jobs_finalized_iff_terminal CHECK (
    (state IN ('completed', 'failed', 'cancelled')) = (finalized_at IS NOT NULL)
  ),
  CONSTRAINT jobs_unique_key_and_states CHECK ((unique_key IS NULL) = (unique_states IS NULL))
)
-- Every job is updated twice (claim, outcome), so dead tuples pile up fast: vacuum and analyze after 2% of
-- the table changed instead of the default 20%, keeping the claim index free of dead entries.
WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

COMMENT ON TABLE awa.jobs IS 'awa canonical engine: one row per job; (id, run_lease) identifies an attempt.';

-- Claim path: WHERE state = 'available' AND queue = $1 ORDER BY priority, run_at, id ... FOR UPDATE SKIP LOCKED.
CREATE INDEX jobs_claim ON awa.jobs (queue, priority, run_at, id) WHERE state = 'available';

-- Promotion of due scheduled/retryable jobs.
CREATE INDEX jobs_due ON awa.jobs (run_at) WHERE state IN ('scheduled', 'retryable');

-- Rescue of stale or overdue attempts; small because only running/waiting jobs are in it.
CREATE INDEX jobs_in_flight ON awa.jobs (id) WHERE state IN ('running', 'waiting_external');

-- Retention: delete terminal jobs finalized before a cutoff.
CREATE INDEX jobs_finalized ON awa.jobs (finalized_at) WHERE finalized_at IS NOT NULL;

-- A unique key is held only while the job's state is one of its unique_states.
CREATE UNIQUE INDEX jobs_unique_key ON awa.jobs (unique_key)
  WHERE unique_key IS NOT NULL AND state = ANY (unique_states);

-- Queue settings. A queue without a row behaves as not paused, DLQ disabled.
CREATE TABLE awa.queues (
  name text PRIMARY KEY CONSTRAINT queues_name_length CHECK (char_length(name) BETWEEN 1 AND 128),
  paused boolean NOT NULL DEFAULT false,
  paused_at timestamptz,
  dlq_enabled boolean NOT NULL DEFAULT false,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE awa.queues IS 'awa queue settings (pause, dead-letter queue); absent row = defaults.';

-- Dead-letter queue: jobs that exhausted their attempts (or were failed) on a queue with dlq_enabled.
-- The row keeps the job's id and run_lease so a retry re-enters awa.jobs without ever reusing a lease.
CREATE TABLE awa.dlq (
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
  tags text[] NOT NULL DEFAULT '{}'::text[],
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  unique_key bytea,
  unique_states awa.job_state[],
  reason text NOT NULL,
  created_at timestamptz NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE awa.dlq IS 'awa dead-letter queue: failed jobs moved out of awa.jobs, retryable by an operator.';

CREATE INDEX dlq_queue_id ON awa.dlq (queue, id);

-- Which storage engine callers use. awa migrate seeds 'canonical' once and never changes it.
CREATE TABLE awa.runtime_state (
  singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT runtime_state_singleton CHECK (singleton),
  active_engine text NOT NULL DEFAULT 'canonical'
    CONSTRAINT runtime_state_engine CHECK (active_engine IN ('canonical', 'queue_storage')),
  updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO awa.runtime_state (singleton) VALUES (true);

COMMENT ON TABLE awa.runtime_state IS 'awa runtime state: the active storage engine (single row).';

-- Leadership record, for observability. The election itself is a session advisory lock held on a
-- dedicated connection; this row says who holds it and since when.
CREATE TABLE awa.leaders (
  name text PRIMARY KEY,
  holder text NOT NULL,
  elected_at timestamptz NOT NULL DEFAULT now(),
  renewed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE awa.leaders IS 'awa elected leaders (maintenance): current holder per role, informational.';

-- New work wakes workers: one NOTIFY per distinct queue per statement (not per row) on channel
-- awa_jobs_available with the queue name as payload. One channel keeps LISTEN to a single statement
-- per connection and avoids the 63-byte channel-name limit for long queue names.
CREATE FUNCTION awa.notify_jobs_available() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('awa_jobs_available', q.queue)
  FROM (SELECT DISTINCT n.queue FROM awa_new_jobs n WHERE n.state = 'available') AS q;
  RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_notify_available
  AFTER INSERT ON awa.jobs
  REFERENCING NEW TABLE AS awa_new_jobs
  FOR EACH STATEMENT
  EXECUTE FUNCTION awa.notify_jobs_available();
