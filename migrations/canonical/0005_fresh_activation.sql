-- Fresh installs start on queue storage: awa.storage_activate_fresh() lets the first runtime of a pristine database (state canonical and never moved, no job ever enqueued, no runtime ever seen) move it straight to active queue storage, its gate checked under the state row lock; awa.runtime_state.first_runtime_at is the durable "a runtime was seen" marker; awa.storage_keep_canonical() records an operator's choice to stay canonical. awa migrate itself never moves the state.

-- runtime_instances rows are deleted at a clean stop and pruned when stale, so they cannot say whether a
-- runtime was ever seen: this column does, set once by the first registration and never cleared.
ALTER TABLE awa.runtime_state ADD COLUMN first_runtime_at timestamptz;

COMMENT ON COLUMN awa.runtime_state.first_runtime_at IS
  'When the first awa runtime registered (NULL: none ever did). A database with a runtime seen is no longer fresh, so it is never activated for queue storage automatically.';

-- Runtimes registered before this migration count as seen.
UPDATE awa.runtime_state
   SET first_runtime_at = (SELECT min(i.started_at) FROM awa.runtime_instances i)
 WHERE first_runtime_at IS NULL;

-- As in 0003, and the first registration also sets the durable marker. The UPDATE matches (and locks the
-- state row) only while the marker is unset, so renewals never contend on the state row; while it is unset
-- the lock orders this registration with a concurrent awa.storage_activate_fresh.
CREATE OR REPLACE FUNCTION awa.register_runtime(
  p_id text, p_host text, p_pid integer, p_version text, p_engines text[],
  p_stale_after interval DEFAULT interval '5 minutes'
) RETURNS void LANGUAGE sql VOLATILE AS $fn$
  UPDATE awa.runtime_state SET first_runtime_at = now() WHERE first_runtime_at IS NULL;
  DELETE FROM awa.runtime_instances WHERE last_seen_at < now() - p_stale_after AND id <> p_id;
  INSERT INTO awa.runtime_instances (id, host, pid, version, engines)
  VALUES (p_id, p_host, p_pid, p_version, p_engines)
  ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), engines = EXCLUDED.engines, version = EXCLUDED.version;
$fn$;

-- Why the database is not fresh (NULL when it is): the state moved or was ever set, a runtime was seen, or
-- a job was ever enqueued (the job id sequence, shared by both engines, was used; rows in awa.jobs or
-- awa.dlq). A sequence only ever advances, even for rolled-back inserts, so it also catches an insert still
-- in flight.
CREATE FUNCTION awa.storage_fresh_blocker() RETURNS text LANGUAGE sql STABLE AS $fn$
  SELECT CASE
    WHEN s.storage_state <> 'canonical' THEN format('the storage state is already %s', s.storage_state)
    WHEN s.changed_at IS NOT NULL
      THEN format('the storage state was set by %s at %s', coalesce(s.changed_by, '?'), s.changed_at)
    WHEN s.first_runtime_at IS NOT NULL THEN format('a runtime was already seen (first at %s)', s.first_runtime_at)
    WHEN EXISTS (SELECT 1 FROM awa.runtime_instances) THEN 'a runtime is registered'
    WHEN pg_sequence_last_value('awa.jobs_id_seq'::regclass) IS NOT NULL
      THEN 'jobs were already enqueued (the job id sequence was used)'
    WHEN EXISTS (SELECT 1 FROM awa.jobs) THEN 'awa.jobs holds jobs'
    WHEN EXISTS (SELECT 1 FROM awa.dlq) THEN 'awa.dlq holds jobs'
  END
  FROM awa.runtime_state s
$fn$;

-- canonical (fresh) -> active, in queue-storage schema p_schema, by the first runtime that starts. Never
-- raises for a database that does not qualify: it returns what it did.
--   outcome 'activated'          this call moved the state to active (recorded and announced like every
--                                transition: changed_by/changed_at and NOTIFY awa_storage_state);
--   outcome 'not-fresh'          nothing changed: reason says what makes the database not fresh (for
--                                every start after the first, the state is already active);
--   outcome 'substrate-missing'  nothing changed: the database is fresh but p_schema holds no queue-storage
--                                substrate (reason says what to run).
-- The gate is read once without a lock (so later starts do not queue on the state row) and, when it looks
-- fresh, again under the state row lock: of concurrent first starts exactly one activates.
CREATE FUNCTION awa.storage_activate_fresh(p_schema text DEFAULT 'awa', p_actor text DEFAULT NULL)
RETURNS TABLE (outcome text, storage_state text, queue_storage_schema text, reason text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  blocker text;
  r awa.runtime_state;
BEGIN
  blocker := awa.storage_fresh_blocker();
  IF blocker IS NULL THEN
    PERFORM 1 FROM awa.runtime_state FOR UPDATE;
    -- A new snapshot: a first start that won the lock before this one has committed its move by now.
    blocker := awa.storage_fresh_blocker();
  END IF;
  IF blocker IS NOT NULL THEN
    RETURN QUERY SELECT 'not-fresh'::text, s.storage_state, s.queue_storage_schema, blocker FROM awa.runtime_state s;
    RETURN;
  END IF;
  IF p_schema IS NULL OR p_schema !~ '^[a-z_][a-z0-9_]*$' THEN
    RETURN QUERY SELECT 'substrate-missing'::text, 'canonical'::text, NULL::text,
      format('%s is not a queue-storage schema name (a lower-case identifier, for example awa)', coalesce(p_schema, 'NULL'));
    RETURN;
  END IF;
  IF NOT awa.queue_storage_substrate_present(p_schema) THEN
    RETURN QUERY SELECT 'substrate-missing'::text, 'canonical'::text, NULL::text,
      format('schema %s holds no queue-storage substrate: %s', p_schema,
        CASE WHEN p_schema = 'awa' THEN 'run `awa migrate` (it installs the queue-storage set)'
             ELSE format('run `awa storage prepare-queue-storage-schema --schema %s`', p_schema) END);
    RETURN;
  END IF;
  r := awa.storage_set_state('active', p_schema, coalesce(p_actor, current_user || ' (fresh install)'));
  RETURN QUERY SELECT 'activated'::text, r.storage_state, r.queue_storage_schema,
    format('a fresh database: queue storage in schema %s is active', p_schema);
END
$fn$;

-- canonical -> canonical, recorded: an operator's choice that this database stays on the canonical engine
-- even though nothing ran on it yet (fresh activation then never happens; `awa storage prepare` still moves
-- it later). Refused unless the state is canonical.
CREATE FUNCTION awa.storage_keep_canonical(p_actor text DEFAULT current_user)
RETURNS awa.runtime_state LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM awa.storage_lock_state('keep-canonical', ARRAY['canonical']);
  RETURN awa.storage_set_state('canonical', NULL, p_actor);
END
$fn$;

-- The SQL producer (awa.insert_job, awa.insert_jobs, 0004) is a producer too: its first insert on a fresh
-- database activates queue storage before the state is read, exactly as the TypeScript producer's first write
-- does, so `awa migrate`, then `SELECT awa.insert_job(...)` from psql, then a worker serves that job from
-- queue storage. Otherwise unchanged: the state read under a KEY SHARE lock on the state row. The freshness
-- check is one read of the state row (the CASE stops at the first history it finds).
CREATE OR REPLACE FUNCTION awa.storage_state_for_insert(OUT storage_state text, OUT queue_storage_schema text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
  IF awa.storage_fresh_blocker() IS NULL THEN
    PERFORM awa.storage_activate_fresh('awa', 'awa.insert_job (fresh install)');
  END IF;
  SELECT s.storage_state, s.queue_storage_schema INTO storage_state, queue_storage_schema
    FROM awa.runtime_state s FOR KEY SHARE;
END
$fn$;
