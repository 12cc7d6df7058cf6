-- Mixed-mode continuation for schema {{schema}}: canonical jobs that wait again (a retry or snooze of a running attempt, an admin retry, a DLQ retry, a scheduled/retryable job moved by the maintenance leader) leave awa.jobs / awa.dlq and enter this schema's deferred or ready rows under the same id, lease, attempt count, errors, tags, metadata and unique key, in one transaction.
--
-- Every function here deletes the canonical row first (its row lock serializes it against any other write
-- for the same attempt: a canonical write that waited on the lock finds the row gone and reports stale,
-- and a later write is routed here, where no open attempt exists, so it is stale too), then inserts the
-- job's body into deferred_jobs and its unique key into unique_claims, and promotes the rows already due
-- through ready_from_deferred (which locks their lanes). The unique key moves inside the transaction: until
-- it commits, readers still see the canonical holder; after it, unique_claims holds it, so no second holder
-- can be inserted in between. Under queue storage's rule a key is then held until the job is terminal.
-- The functions are plpgsql so that they can be created where awa.jobs does not exist (a custom schema in a
-- database without the canonical set): they are only called while the storage state is mixed.

-- Unique keys across both engines are serialized on a transaction-scoped advisory lock per key (namespace 5):
-- every path that gives a key a holder in one engine while the other may hold it takes the lock first and
-- then looks at the other engine in a fresh snapshot. That is a canonical insert while the state is mixed
-- or active (a producer that has not followed the move yet), a mixed or active queue-storage insert (the
-- runtime locks, then checks awa.jobs, then enqueues, in one transaction), and every move below (locked
-- before the canonical row is deleted).
CREATE FUNCTION {{schema}}.lock_unique_keys(p_keys bytea[]) RETURNS void
LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock({{schema}}.lock_space(5), hashtext(encode(k.key, 'hex')))
  FROM (SELECT DISTINCT u.key FROM unnest(p_keys) AS u(key) WHERE u.key IS NOT NULL ORDER BY 1) k
$$;

-- Refuses a canonical insert that would take a unique key queue storage holds, while the state is mixed or
-- active (an insert from a producer that has not yet re-read the state, or an old release). One trigger
-- serves every queue-storage schema: it reads the state's schema and looks there by dynamic SQL, so it is
-- created once, with the instance in schema awa (which awa migrate always applies), and a custom schema can
-- still be reset without touching awa.jobs.
DO $do$
BEGIN
  IF '{{schema}}' = '"awa"' AND to_regclass('awa.jobs') IS NOT NULL THEN
    CREATE FUNCTION awa.guard_canonical_unique_insert() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    DECLARE
      v_state text;
      v_schema text;
      v_holder bigint;
    BEGIN
      SELECT s.storage_state, s.queue_storage_schema INTO v_state, v_schema FROM awa.runtime_state s
      WHERE s.storage_state IN ('mixed', 'active');
      IF NOT FOUND OR NOT (NEW.state = ANY (coalesce(NEW.unique_states, '{}'::awa.job_state[]))) THEN
        RETURN NEW;
      END IF;
      EXECUTE format('SELECT %1$I.lock_unique_keys($1)', v_schema) USING ARRAY[NEW.unique_key];
      EXECUTE format('SELECT u.job_id FROM %1$I.unique_claims u WHERE u.unique_key = $1', v_schema)
        INTO v_holder USING NEW.unique_key;
      IF v_holder IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'unique_violation',
          MESSAGE = format('unique key %s is held by queue-storage job %s (storage state %s)',
            encode(NEW.unique_key, 'hex'), v_holder, v_state),
          HINT = 'This producer inserted into the canonical engine after the storage state moved; it follows the state within a second, so insert again.';
      END IF;
      RETURN NEW;
    END
    $fn$;
    CREATE TRIGGER jobs_unique_guard BEFORE INSERT ON awa.jobs
      FOR EACH ROW WHEN (NEW.unique_key IS NOT NULL) EXECUTE FUNCTION awa.guard_canonical_unique_insert();
  END IF;
END
$do$;

-- Moves the canonical rows just deleted (p_rows: awa.jobs rows as JSON, with the new state, run time,
-- attempt, errors and attempted_at already decided by the caller) into deferred_jobs, takes their unique
-- keys (p_strict: raise unique_violation when another job holds one, else leave the key with its holder),
-- and readies those due now. Returns the ids moved.
CREATE FUNCTION {{schema}}.adopt_canonical_rows(p_rows jsonb, p_strict boolean, p_mode text)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ids bigint[];
  v_due bigint[];
  v_held bigint;
BEGIN
  IF p_rows IS NULL OR jsonb_array_length(p_rows) = 0 THEN
    RETURN;
  END IF;
  WITH rows AS (
    SELECT r.* FROM jsonb_to_recordset(p_rows) AS r(id bigint, state text, kind text, queue text, priority smallint,
      args jsonb, attempt integer, max_attempts integer, run_lease bigint, run_at timestamptz,
      attempt_timeout_ms integer, tags text[], metadata jsonb, errors jsonb, unique_key text,
      unique_states text[], attempted_at timestamptz, created_at timestamptz)
  ), ins AS (
    INSERT INTO {{schema}}.deferred_jobs (id, seq, state, kind, queue, priority, args, attempt, max_attempts,
      run_lease, run_at, attempt_timeout_ms, tags, metadata, errors, unique_key, unique_states, attempted_at,
      created_at)
    SELECT r.id, nextval('{{schema}}.event_seq'), r.state, r.kind, r.queue, r.priority, r.args, r.attempt,
      r.max_attempts, r.run_lease, r.run_at, r.attempt_timeout_ms, coalesce(r.tags, '{}'::text[]),
      coalesce(r.metadata, '{}'::jsonb), r.errors, decode(r.unique_key, 'hex'), r.unique_states, r.attempted_at,
      r.created_at
    FROM rows r ORDER BY r.id
    RETURNING deferred_jobs.id, deferred_jobs.run_at
  )
  SELECT array_agg(i.id ORDER BY i.id), array_agg(i.id ORDER BY i.id) FILTER (WHERE i.run_at <= now())
  INTO v_ids, v_due FROM ins i;
  IF p_strict THEN
    -- An admin retry takes the key back or fails, as it does within one engine.
    SELECT j.id INTO v_held FROM awa.jobs j
    JOIN {{schema}}.deferred_jobs f ON f.id = ANY (v_ids) AND f.unique_key = j.unique_key
    WHERE j.state = ANY (j.unique_states) AND j.id <> f.id LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'unique_violation',
        MESSAGE = format('unique key held by canonical job %s', v_held);
    END IF;
    INSERT INTO {{schema}}.unique_claims (unique_key, job_id)
    SELECT f.unique_key, f.id FROM {{schema}}.deferred_jobs f
    WHERE f.id = ANY (v_ids) AND f.unique_key IS NOT NULL ORDER BY f.id;
  ELSE
    -- A continuing job keeps its key; only a job whose canonical state did not hold it can find it taken
    -- (its unique_states left that state out), and then the holder keeps it: never two holders.
    INSERT INTO {{schema}}.unique_claims (unique_key, job_id)
    SELECT f.unique_key, f.id FROM {{schema}}.deferred_jobs f
    WHERE f.id = ANY (v_ids) AND f.unique_key IS NOT NULL ORDER BY f.id
    ON CONFLICT (unique_key) DO NOTHING;
  END IF;
  IF v_due IS NOT NULL THEN
    PERFORM {{schema}}.ready_from_deferred(v_due, p_mode);
  END IF;
  RETURN QUERY SELECT unnest(v_ids);
END
$$;

-- Continues running canonical attempts (p_ids, p_leases) in this schema: retried (p_consume: the attempt
-- counts, error p_errors recorded, retryable) or snoozed (the attempt is given back, scheduled), due after
-- p_delays milliseconds (0: ready now). Returns the ids whose attempt was still the open canonical one; the
-- others are stale.
CREATE FUNCTION {{schema}}.adopt_canonical_attempts(p_ids bigint[], p_leases bigint[], p_delays bigint[],
  p_errors text[], p_consume boolean)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows jsonb;
BEGIN
  PERFORM {{schema}}.lock_unique_keys(ARRAY(SELECT j.unique_key FROM awa.jobs j WHERE j.id = ANY (p_ids)));
  WITH d AS (
    SELECT * FROM unnest(p_ids, p_leases, p_delays, p_errors) AS d(id, run_lease, delay_ms, error)
  ), moved AS (
    DELETE FROM awa.jobs j USING d
    WHERE j.id = ANY (p_ids) AND j.id = d.id AND j.run_lease = d.run_lease
      AND j.state IN ('running', 'waiting_external')
    RETURNING j.*, d.delay_ms, d.error
  )
  SELECT jsonb_agg(jsonb_build_object(
    'id', m.id, 'state', CASE WHEN p_consume THEN 'retryable' ELSE 'scheduled' END, 'kind', m.kind,
    'queue', m.queue, 'priority', m.priority, 'args', m.args,
    'attempt', CASE WHEN p_consume THEN m.attempt ELSE greatest(m.attempt - 1, 0) END,
    'max_attempts', m.max_attempts, 'run_lease', m.run_lease,
    'run_at', now() + greatest(m.delay_ms, 0) * interval '1 millisecond',
    'attempt_timeout_ms', m.attempt_timeout_ms, 'tags', to_jsonb(m.tags), 'metadata', m.metadata,
    'errors', {{schema}}.append_error(m.errors, m.error), 'unique_key', encode(m.unique_key, 'hex'),
    'unique_states', to_jsonb(m.unique_states::text[]), 'attempted_at', m.attempted_at,
    'created_at', m.created_at))
  INTO v_rows FROM moved m;
  RETURN QUERY SELECT a FROM {{schema}}.adopt_canonical_rows(v_rows, false, 'promote') a;
END
$$;

-- Moves up to p_limit canonical scheduled and retryable jobs (not running, rows another transaction holds
-- are skipped) into this schema as they are: same state, run time and attempt count; those already due are
-- readied at once (keeping their run time), the others by promotion here when due. The maintenance leader calls it while mixed, so a job scheduled far ahead does not keep
-- the canonical backlog (and finalize) waiting for it. Returns how many moved.
CREATE FUNCTION {{schema}}.adopt_canonical_waiting(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows jsonb;
  v_ids bigint[];
  v_keys bytea[];
BEGIN
  SELECT array_agg(p.id), array_agg(p.unique_key) INTO v_ids, v_keys FROM (
    SELECT j.id, j.unique_key FROM awa.jobs j WHERE j.state IN ('scheduled', 'retryable')
    ORDER BY j.run_at, j.id LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ) p;
  IF v_ids IS NULL THEN
    RETURN 0;
  END IF;
  PERFORM {{schema}}.lock_unique_keys(v_keys);
  WITH moved AS (
    DELETE FROM awa.jobs j WHERE j.id = ANY (v_ids) RETURNING j.*
  )
  SELECT jsonb_agg(jsonb_build_object(
    'id', m.id, 'state', m.state::text, 'kind', m.kind, 'queue', m.queue, 'priority', m.priority, 'args', m.args,
    'attempt', m.attempt, 'max_attempts', m.max_attempts, 'run_lease', m.run_lease,
    'run_at', m.run_at,
    'attempt_timeout_ms', m.attempt_timeout_ms, 'tags', to_jsonb(m.tags), 'metadata', m.metadata,
    'errors', m.errors, 'unique_key', encode(m.unique_key, 'hex'),
    'unique_states', to_jsonb(m.unique_states::text[]), 'attempted_at', m.attempted_at,
    'created_at', m.created_at))
  INTO v_rows FROM moved m;
  RETURN (SELECT count(*) FROM {{schema}}.adopt_canonical_rows(v_rows, false, 'promote'));
END
$$;

-- Admin retry of canonical job p_id (scheduled, retryable, completed, failed or cancelled) into this schema:
-- ready now with a fresh attempt count, its unique key taken back (unique_violation when another job holds
-- it). Returns false when the job is not in awa.jobs in one of those states.
CREATE FUNCTION {{schema}}.adopt_canonical_retry(p_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows jsonb;
BEGIN
  PERFORM {{schema}}.lock_unique_keys(ARRAY(SELECT j.unique_key FROM awa.jobs j WHERE j.id = p_id));
  WITH moved AS (
    DELETE FROM awa.jobs j
    WHERE j.id = p_id AND j.state IN ('scheduled', 'retryable', 'completed', 'failed', 'cancelled')
    RETURNING j.*
  )
  SELECT jsonb_agg(jsonb_build_object(
    'id', m.id, 'state', 'retryable', 'kind', m.kind, 'queue', m.queue, 'priority', m.priority, 'args', m.args,
    'attempt', 0, 'max_attempts', m.max_attempts, 'run_lease', m.run_lease, 'run_at', now(),
    'attempt_timeout_ms', m.attempt_timeout_ms, 'tags', to_jsonb(m.tags), 'metadata', m.metadata,
    'errors', m.errors, 'unique_key', encode(m.unique_key, 'hex'),
    'unique_states', to_jsonb(m.unique_states::text[]), 'attempted_at', NULL, 'created_at', m.created_at))
  INTO v_rows FROM moved m;
  IF v_rows IS NULL THEN
    RETURN false;
  END IF;
  PERFORM {{schema}}.adopt_canonical_rows(v_rows, true, 'retry');
  RETURN true;
END
$$;

-- Retries canonical DLQ entries (entry p_id, else those matching queue p_queue and kind p_kind; NULL for any)
-- into this schema: ready now with a fresh attempt count, unique keys taken back (unique_violation when
-- another job holds one). Returns the ids.
CREATE FUNCTION {{schema}}.adopt_canonical_dlq(p_id bigint, p_queue text, p_kind text)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows jsonb;
BEGIN
  PERFORM {{schema}}.lock_unique_keys(ARRAY(
    SELECT d.unique_key FROM awa.dlq d
    WHERE (p_id IS NOT NULL AND d.id = p_id)
       OR (p_id IS NULL AND (p_queue IS NULL OR d.queue = p_queue) AND (p_kind IS NULL OR d.kind = p_kind))));
  WITH moved AS (
    DELETE FROM awa.dlq d
    WHERE (p_id IS NOT NULL AND d.id = p_id)
       OR (p_id IS NULL AND (p_queue IS NULL OR d.queue = p_queue) AND (p_kind IS NULL OR d.kind = p_kind))
    RETURNING d.*
  )
  SELECT jsonb_agg(jsonb_build_object(
    'id', m.id, 'state', 'retryable', 'kind', m.kind, 'queue', m.queue, 'priority', m.priority, 'args', m.args,
    'attempt', 0, 'max_attempts', m.max_attempts, 'run_lease', m.run_lease, 'run_at', now(),
    'attempt_timeout_ms', m.attempt_timeout_ms, 'tags', to_jsonb(m.tags), 'metadata', m.metadata,
    'errors', m.errors, 'unique_key', encode(m.unique_key, 'hex'),
    'unique_states', to_jsonb(m.unique_states::text[]), 'attempted_at', NULL, 'created_at', m.created_at))
  INTO v_rows FROM moved m;
  RETURN QUERY SELECT a FROM {{schema}}.adopt_canonical_rows(v_rows, true, 'retry') a ORDER BY 1;
END
$$;

-- Copies the canonical queue settings (pause, DLQ) of queues this schema has no settings for yet, so a queue
-- paused or dead-lettering before the move keeps doing so once its jobs live here (settings changed while
-- mixed are written to both engines). Returns how many queues were copied.
CREATE FUNCTION {{schema}}.adopt_canonical_queue_settings() RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows integer;
BEGIN
  INSERT INTO {{schema}}.queue_settings (name, paused, paused_at, dlq_enabled)
  SELECT q.name, q.paused, q.paused_at, q.dlq_enabled FROM awa.queues q
  WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.queue_settings s WHERE s.name = q.name)
  ORDER BY q.name
  ON CONFLICT (name) DO NOTHING;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
