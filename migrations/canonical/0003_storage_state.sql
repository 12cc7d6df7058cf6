-- The active engine as database state: awa.runtime_state gains the storage state (canonical -> prepared -> mixed -> active, abort back to canonical), who moved it and when; awa.runtime_instances registers live runtimes; awa.storage_* functions move the state, each checking its gate under a lock on the state row; NOTIFY awa_storage_state announces every move.

-- The state row. active_engine stays the engine a single-engine reader uses (queue_storage only when active).
ALTER TABLE awa.runtime_state
  ADD COLUMN storage_state text NOT NULL DEFAULT 'canonical'
    CONSTRAINT runtime_state_storage_state CHECK (storage_state IN ('canonical', 'prepared', 'mixed', 'active')),
  ADD COLUMN queue_storage_schema text
    CONSTRAINT runtime_state_queue_storage_schema CHECK (queue_storage_schema ~ '^[a-z_][a-z0-9_]*$'),
  ADD COLUMN changed_by text,
  ADD COLUMN changed_at timestamptz,
  ADD CONSTRAINT runtime_state_schema_when_moved
    CHECK ((storage_state = 'canonical') = (queue_storage_schema IS NULL)),
  ADD CONSTRAINT runtime_state_engine_follows_state
    CHECK ((storage_state = 'active') = (active_engine = 'queue_storage'));

COMMENT ON COLUMN awa.runtime_state.storage_state IS
  'Where jobs live: canonical, prepared (queue storage ready, unused), mixed (new jobs to queue storage, canonical draining), active (queue storage only). Moved only by the awa.storage_* functions.';
COMMENT ON COLUMN awa.runtime_state.queue_storage_schema IS 'The queue-storage schema the state refers to (NULL while canonical).';
COMMENT ON COLUMN awa.runtime_state.changed_by IS 'Who made the last state change (the actor passed to the storage function).';
COMMENT ON COLUMN awa.runtime_state.changed_at IS 'When the last state change committed its transaction (NULL: never moved).';

-- Live runtimes: one row per running worker process, upserted at start and with its heartbeats, deleted at
-- a clean stop and pruned when stale. The storage gates read "live" as last_seen_at within a window.
CREATE TABLE awa.runtime_instances (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  engines text[] NOT NULL
    CONSTRAINT runtime_instances_engines CHECK (engines <@ ARRAY['canonical', 'queue_storage']::text[]),
  started_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX runtime_instances_last_seen ON awa.runtime_instances (last_seen_at);

COMMENT ON TABLE awa.runtime_instances IS
  'awa runtimes (workers) seen recently: id, host, pid, version, engines they can serve, last heartbeat.';

-- A runtime announces itself (or renews); stale rows of any runtime are pruned in the same call.
CREATE FUNCTION awa.register_runtime(
  p_id text, p_host text, p_pid integer, p_version text, p_engines text[],
  p_stale_after interval DEFAULT interval '5 minutes'
) RETURNS void LANGUAGE sql VOLATILE AS $fn$
  DELETE FROM awa.runtime_instances WHERE last_seen_at < now() - p_stale_after AND id <> p_id;
  INSERT INTO awa.runtime_instances (id, host, pid, version, engines)
  VALUES (p_id, p_host, p_pid, p_version, p_engines)
  ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), engines = EXCLUDED.engines, version = EXCLUDED.version;
$fn$;

-- A refused move: SQLSTATE AWS01, the message starts with 'awa storage gate <gate>:', DETAIL names the gate,
-- HINT says what to do.
CREATE FUNCTION awa.storage_refuse(p_gate text, p_message text, p_hint text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'AWS01', MESSAGE = format('awa storage gate %s: %s', p_gate, p_message),
    DETAIL = p_gate, HINT = p_hint;
END
$fn$;

-- Locks the state row and refuses unless it is in one of p_from.
CREATE FUNCTION awa.storage_lock_state(p_action text, p_from text[]) RETURNS awa.runtime_state
LANGUAGE plpgsql AS $fn$
DECLARE
  r awa.runtime_state;
BEGIN
  SELECT * INTO STRICT r FROM awa.runtime_state FOR UPDATE;
  IF NOT r.storage_state = ANY (p_from) THEN
    PERFORM awa.storage_refuse('state',
      format('%s needs the storage state to be %s, but it is %s', p_action, array_to_string(p_from, ' or '), r.storage_state),
      'Run `awa storage status` to see the state and the next step.');
  END IF;
  RETURN r;
END
$fn$;

CREATE FUNCTION awa.storage_set_state(p_state text, p_schema text, p_actor text) RETURNS awa.runtime_state
LANGUAGE plpgsql AS $fn$
DECLARE
  r awa.runtime_state;
BEGIN
  UPDATE awa.runtime_state
     SET storage_state = p_state,
         queue_storage_schema = CASE WHEN p_state = 'canonical' THEN NULL ELSE p_schema END,
         active_engine = CASE WHEN p_state = 'active' THEN 'queue_storage' ELSE 'canonical' END,
         changed_by = coalesce(p_actor, current_user), changed_at = now(), updated_at = now()
  RETURNING * INTO r;
  PERFORM pg_notify('awa_storage_state', p_state);
  RETURN r;
END
$fn$;

-- True when schema p_schema holds the queue-storage substrate (its tables and functions).
CREATE FUNCTION awa.queue_storage_substrate_present(p_schema text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
  SELECT to_regclass(format('%I.queue_storage_meta', p_schema)) IS NOT NULL
     AND to_regclass(format('%I.ready_entries', p_schema)) IS NOT NULL
     AND to_regclass(format('%I.deferred_jobs', p_schema)) IS NOT NULL
     AND to_regclass(format('%I.done_entries', p_schema)) IS NOT NULL
     AND to_regclass(format('%I.dlq_entries', p_schema)) IS NOT NULL
$fn$;

-- True when queue storage in p_schema holds or has held work (a job row, a terminal count).
CREATE FUNCTION awa.queue_storage_holds_work(p_schema text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  found boolean;
BEGIN
  IF NOT awa.queue_storage_substrate_present(p_schema) THEN
    RETURN false;
  END IF;
  EXECUTE format(
    'SELECT EXISTS (SELECT 1 FROM %1$I.ready_entries) OR EXISTS (SELECT 1 FROM %1$I.deferred_jobs)'
    ' OR EXISTS (SELECT 1 FROM %1$I.done_entries) OR EXISTS (SELECT 1 FROM %1$I.dlq_entries)'
    ' OR EXISTS (SELECT 1 FROM %1$I.queue_terminal_live_counts WHERE count > 0)', p_schema)
  INTO found;
  RETURN found;
END
$fn$;

-- Canonical jobs not yet terminal (the backlog finalize waits for).
CREATE FUNCTION awa.canonical_backlog() RETURNS bigint LANGUAGE sql STABLE AS $fn$
  SELECT count(*) FROM awa.jobs WHERE state NOT IN ('completed', 'failed', 'cancelled')
$fn$;

-- canonical -> prepared: the substrate must be present in p_schema.
CREATE FUNCTION awa.storage_prepare(p_schema text DEFAULT 'awa', p_actor text DEFAULT current_user)
RETURNS awa.runtime_state LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM awa.storage_lock_state('prepare', ARRAY['canonical']);
  IF p_schema IS NULL OR p_schema !~ '^[a-z_][a-z0-9_]*$' THEN
    PERFORM awa.storage_refuse('schema', format('%s is not a queue-storage schema name', coalesce(p_schema, 'NULL')),
      'Name a lower-case identifier (letters, digits, _), for example awa.');
  END IF;
  IF NOT awa.queue_storage_substrate_present(p_schema) THEN
    PERFORM awa.storage_refuse('substrate', format('schema %s holds no queue-storage substrate', p_schema),
      CASE WHEN p_schema = 'awa' THEN 'Run `awa migrate` (it installs the queue-storage set), then prepare again.'
           ELSE format('Run `awa storage prepare-queue-storage-schema --schema %s`, then prepare again.', p_schema) END);
  END IF;
  RETURN awa.storage_set_state('prepared', p_schema, p_actor);
END
$fn$;

-- prepared -> mixed: a live runtime (seen within p_live_within) must be able to serve queue storage.
CREATE FUNCTION awa.storage_enter_mixed(p_actor text DEFAULT current_user, p_live_within interval DEFAULT interval '30 seconds')
RETURNS awa.runtime_state LANGUAGE plpgsql AS $fn$
DECLARE
  r awa.runtime_state;
BEGIN
  r := awa.storage_lock_state('enter-mixed', ARRAY['prepared']);
  IF NOT awa.queue_storage_substrate_present(r.queue_storage_schema) THEN
    PERFORM awa.storage_refuse('substrate', format('schema %s no longer holds the queue-storage substrate', r.queue_storage_schema),
      'Re-install it (`awa migrate` or `awa storage prepare-queue-storage-schema`), or `awa storage abort`.');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM awa.runtime_instances
                  WHERE last_seen_at >= now() - p_live_within AND 'queue_storage' = ANY (engines)) THEN
    PERFORM awa.storage_refuse('capable-runtime',
      format('no live runtime (seen in the last %s) can serve queue storage', p_live_within),
      'Start (or upgrade to) a worker release that serves queue storage, wait for its first heartbeat, then run enter-mixed again.');
  END IF;
  RETURN awa.storage_set_state('mixed', r.queue_storage_schema, p_actor);
END
$fn$;

-- mixed -> active: the canonical backlog drained and no live canonical-only runtime.
CREATE FUNCTION awa.storage_finalize(p_actor text DEFAULT current_user, p_live_within interval DEFAULT interval '30 seconds')
RETURNS awa.runtime_state LANGUAGE plpgsql AS $fn$
DECLARE
  r awa.runtime_state;
  backlog bigint;
  old_runtimes text;
BEGIN
  r := awa.storage_lock_state('finalize', ARRAY['mixed']);
  -- Block new canonical writes racing the count: a canonical insert takes ROW EXCLUSIVE, which SHARE waits for.
  LOCK TABLE awa.jobs IN SHARE MODE;
  backlog := awa.canonical_backlog();
  IF backlog > 0 THEN
    PERFORM awa.storage_refuse('canonical-backlog',
      format('%s canonical job(s) are not finished yet (available, scheduled, running, retryable or waiting)', backlog),
      'Keep workers running until they drain, then finalize again (`awa storage finalize --wait 10m` waits); `awa storage finalize --check` shows the backlog.');
  END IF;
  SELECT string_agg(format('%s (host %s, pid %s, version %s)', id, host, pid, version), ', ' ORDER BY id) INTO old_runtimes
    FROM awa.runtime_instances
   WHERE last_seen_at >= now() - p_live_within AND NOT ('queue_storage' = ANY (engines));
  IF old_runtimes IS NOT NULL THEN
    PERFORM awa.storage_refuse('canonical-only-runtime',
      format('live runtime(s) that can serve only the canonical engine: %s', old_runtimes),
      'Stop or upgrade them to a release that serves queue storage, then finalize again.');
  END IF;
  RETURN awa.storage_set_state('active', r.queue_storage_schema, p_actor);
END
$fn$;

-- prepared or mixed -> canonical: refused once queue storage holds work.
CREATE FUNCTION awa.storage_abort(p_actor text DEFAULT current_user)
RETURNS awa.runtime_state LANGUAGE plpgsql AS $fn$
DECLARE
  r awa.runtime_state;
BEGIN
  r := awa.storage_lock_state('abort', ARRAY['prepared', 'mixed']);
  IF awa.queue_storage_holds_work(r.queue_storage_schema) THEN
    PERFORM awa.storage_refuse('queue-storage-work',
      format('queue storage in schema %s already holds work, which a canonical state would strand', r.queue_storage_schema),
      'Go forward instead: keep workers running and run `awa storage finalize` once the canonical backlog is drained.');
  END IF;
  RETURN awa.storage_set_state('canonical', NULL, p_actor);
END
$fn$;
