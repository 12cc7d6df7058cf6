-- Installs awa's pgmq-compatible SQL API (schema pgmq) where neither a pgmq schema nor the extension is available.
-- awa:when provider=sql
--
-- Written for awa from pgmq's documented function signatures, return types and table layout, so that
-- existing pgmq clients work against it unchanged. Not supported here: partitioned queues (they need
-- pg_partman; pgmq.create_partitioned raises a clear error) and the extension-membership functions
-- (pgmq.detach_archive is a no-op because nothing belongs to an extension).
--
-- Queue names: 1 to 47 characters, lower-case letters, digits and underscores, starting with a letter
-- or underscore. 47 is pgmq's documented limit (the longest derived identifier must fit in 63 bytes);
-- the character rule keeps every derived table, index and sequence name a plain identifier.
-- Every table name used in dynamic SQL comes from pgmq.format_table_name (which validates) and is
-- interpolated with format('%I'); every value is passed with USING.

CREATE SCHEMA pgmq;

COMMENT ON SCHEMA pgmq IS
  'pgmq-compatible SQL API installed by awa (migration set pgmq, provider=sql); not the pgmq extension.';

-- One row per queue, in pgmq's layout.
CREATE TABLE pgmq.meta (
  queue_name varchar UNIQUE NOT NULL,
  is_partitioned boolean NOT NULL,
  is_unlogged boolean NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- A message as returned by read, read_with_poll, pop and set_vt.
CREATE TYPE pgmq.message_record AS (
  msg_id bigint,
  read_ct integer,
  enqueued_at timestamptz,
  vt timestamptz,
  message jsonb,
  headers jsonb
);

-- A queue as returned by list_queues.
CREATE TYPE pgmq.queue_record AS (
  queue_name varchar,
  is_partitioned boolean,
  is_unlogged boolean,
  created_at timestamptz
);

-- A queue's metrics as returned by metrics and metrics_all.
CREATE TYPE pgmq.metrics_result AS (
  queue_name text,
  queue_length bigint,
  newest_msg_age_sec integer,
  oldest_msg_age_sec integer,
  total_messages bigint,
  scrape_time timestamptz,
  queue_visible_length bigint
);

------------------------------------------------------------------------------------------------------
-- Names and locks
------------------------------------------------------------------------------------------------------

-- Raises invalid_parameter_value (22023) unless queue_name is a valid queue name (see the header).
CREATE FUNCTION pgmq.validate_queue_name(queue_name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  IF queue_name IS NULL OR queue_name = '' THEN
    RAISE EXCEPTION 'pgmq queue name must not be empty'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass a name of 1 to 47 lower-case letters, digits and underscores, e.g. orders__email.';
  END IF;
  IF length(queue_name) > 47 THEN
    RAISE EXCEPTION 'pgmq queue name "%" is too long: % characters, maximum length is 47 characters',
        queue_name, length(queue_name)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Shorten the queue name to at most 47 characters.';
  END IF;
  IF queue_name !~ '^[a-z_][a-z0-9_]*$' THEN
    RAISE EXCEPTION 'pgmq queue name "%" contains invalid characters: use only lower-case letters, digits and underscores, starting with a letter or underscore',
        queue_name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Rename the queue, e.g. orders__email.';
  END IF;
END;
$fn$;

-- Validates queue_name and returns the name of its table: prefix 'q' (queue) or 'a' (archive).
CREATE FUNCTION pgmq.format_table_name(queue_name text, prefix text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  IF prefix IS NULL OR prefix NOT IN ('q', 'a') THEN
    RAISE EXCEPTION 'pgmq table prefix must be ''q'' or ''a'', got %', coalesce(quote_literal(prefix), 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN prefix || '_' || queue_name;
END;
$fn$;

-- Serializes creating and dropping one queue until the end of the transaction.
CREATE FUNCTION pgmq.acquire_queue_lock(queue_name text)
RETURNS void
LANGUAGE sql
AS $fn$
  SELECT pg_advisory_xact_lock(hashtext('pgmq.queue_' || queue_name));
$fn$;

------------------------------------------------------------------------------------------------------
-- Queues
------------------------------------------------------------------------------------------------------

-- Creates the queue table, its archive table, their indexes and the meta row; a no-op for an existing queue.
CREATE FUNCTION pgmq._create_queue(queue_name text, unlogged boolean)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
  PERFORM pgmq.acquire_queue_lock(queue_name);

  -- %s only ever receives one of the two constant keywords below.
  EXECUTE format(
    $sql$
    CREATE %s TABLE IF NOT EXISTS pgmq.%I (
      msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
      read_ct integer NOT NULL DEFAULT 0,
      enqueued_at timestamptz NOT NULL DEFAULT now(),
      vt timestamptz NOT NULL,
      message jsonb,
      headers jsonb
    )
    $sql$,
    CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END,
    qtable
  );

  EXECUTE format(
    $sql$
    CREATE TABLE IF NOT EXISTS pgmq.%I (
      msg_id bigint PRIMARY KEY,
      read_ct integer NOT NULL DEFAULT 0,
      enqueued_at timestamptz NOT NULL DEFAULT now(),
      archived_at timestamptz NOT NULL DEFAULT now(),
      vt timestamptz NOT NULL,
      message jsonb,
      headers jsonb
    )
    $sql$,
    atable
  );

  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt)', qtable || '_vt_idx', qtable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || queue_name, atable);

  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES (queue_name, false, unlogged)
  ON CONFLICT DO NOTHING;
END;
$fn$;

-- Creates a (non-partitioned, logged) queue; a no-op when it exists.
CREATE FUNCTION pgmq.create_non_partitioned(queue_name text)
RETURNS void
LANGUAGE sql
AS $fn$
  SELECT pgmq._create_queue(queue_name, false);
$fn$;

-- Creates a queue; a no-op when it exists. Same as create_non_partitioned.
CREATE FUNCTION pgmq.create(queue_name text)
RETURNS void
LANGUAGE sql
AS $fn$
  SELECT pgmq._create_queue(queue_name, false);
$fn$;

-- Creates a queue whose queue table is UNLOGGED (fast, emptied after a crash); a no-op when it exists.
CREATE FUNCTION pgmq.create_unlogged(queue_name text)
RETURNS void
LANGUAGE sql
AS $fn$
  SELECT pgmq._create_queue(queue_name, true);
$fn$;

-- Partitioned queues need pg_partman and the pgmq extension; this provider refuses them clearly.
CREATE FUNCTION pgmq.create_partitioned(
  queue_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000'
)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  RAISE EXCEPTION 'partitioned pgmq queues are not supported by awa''s pgmq SQL provider (queue "%")', queue_name
    USING ERRCODE = 'feature_not_supported',
          HINT = 'Use pgmq.create() for a regular queue, or install the pgmq extension and pg_partman on the server.';
END;
$fn$;

-- Drops a queue, its archive and its meta row; returns false (with a notice) when the queue does not exist.
CREATE FUNCTION pgmq.drop_queue(queue_name text)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
  PERFORM pgmq.acquire_queue_lock(queue_name);
  IF to_regclass(format('pgmq.%I', qtable)) IS NULL THEN
    RAISE NOTICE 'pgmq queue "%" does not exist', queue_name;
    RETURN false;
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', qtable);
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', atable);
  DELETE FROM pgmq.meta AS m WHERE m.queue_name = drop_queue.queue_name;
  RETURN true;
END;
$fn$;

-- Deletes every message of a queue (not its archive); returns how many were deleted.
CREATE FUNCTION pgmq.purge_queue(queue_name text)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  purged bigint;
BEGIN
  -- Lock first so the count and the TRUNCATE see the same rows.
  EXECUTE format('LOCK TABLE pgmq.%I IN ACCESS EXCLUSIVE MODE', qtable);
  EXECUTE format('SELECT count(*) FROM pgmq.%I', qtable) INTO purged;
  EXECUTE format('TRUNCATE TABLE pgmq.%I', qtable);
  RETURN purged;
END;
$fn$;

-- Kept for pgmq clients: nothing here belongs to an extension, so there is nothing to detach.
CREATE FUNCTION pgmq.detach_archive(queue_name text)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
END;
$fn$;

-- Lists every queue.
CREATE FUNCTION pgmq.list_queues()
RETURNS SETOF pgmq.queue_record
LANGUAGE sql STABLE
AS $fn$
  SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at
  FROM pgmq.meta AS m
  ORDER BY m.queue_name;
$fn$;

------------------------------------------------------------------------------------------------------
-- Sending
------------------------------------------------------------------------------------------------------

-- Sends one message with headers, visible from `delay` (now when NULL); returns its id.
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
    pgmq.format_table_name(queue_name, 'q')
  ) USING coalesce(delay, clock_timestamp()), msg, headers;
END;
$fn$;

-- Sends one message, visible now.
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, clock_timestamp());
$fn$;

-- Sends one message with headers, visible now.
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, headers, clock_timestamp());
$fn$;

-- Sends one message, visible after `delay` seconds.
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, clock_timestamp() + make_interval(secs => delay));
$fn$;

-- Sends one message, visible from the timestamp `delay`.
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamptz)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, delay);
$fn$;

-- Sends one message with headers, visible after `delay` seconds.
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send(queue_name, msg, headers, clock_timestamp() + make_interval(secs => delay));
$fn$;

-- Sends messages in one statement, headers[i] going with msgs[i] (headers NULL = none), visible from
-- `delay` (now when NULL); returns their ids in the order of msgs.
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
BEGIN
  IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
    RAISE EXCEPTION 'pgmq.send_batch got % messages but % headers', cardinality(msgs), cardinality(headers)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass one headers entry per message (NULL entries allowed), or NULL for no headers.';
  END IF;
  RETURN QUERY EXECUTE format(
    $sql$
    INSERT INTO pgmq.%I (vt, message, headers)
    SELECT $1, m.message, $3[m.ord::integer]
    FROM unnest($2::jsonb[]) WITH ORDINALITY AS m(message, ord)
    ORDER BY m.ord
    RETURNING msg_id
    $sql$,
    qtable
  ) USING coalesce(delay, clock_timestamp()), msgs, headers;
END;
$fn$;

-- Sends messages, visible now.
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[])
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], clock_timestamp());
$fn$;

-- Sends messages with headers, visible now.
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, headers, clock_timestamp());
$fn$;

-- Sends messages, visible after `delay` seconds.
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], clock_timestamp() + make_interval(secs => delay));
$fn$;

-- Sends messages, visible from the timestamp `delay`.
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], delay);
$fn$;

-- Sends messages with headers, visible after `delay` seconds.
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch(queue_name, msgs, headers, clock_timestamp() + make_interval(secs => delay));
$fn$;

------------------------------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------------------------------

-- Reads up to qty visible messages (oldest first), optionally only those whose message contains
-- `conditional`, and hides them for vt seconds. Rows locked by a concurrent reader are skipped, so two
-- readers never receive the same message; every returned message has read_ct incremented.
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH picked AS (
      SELECT q.msg_id
      FROM pgmq.%1$I AS q
      WHERE q.vt <= clock_timestamp()
        AND ($3 = '{}'::jsonb OR q.message @> $3)
      ORDER BY q.msg_id
      LIMIT $1
      FOR UPDATE SKIP LOCKED
    ),
    updated AS (
      UPDATE pgmq.%1$I AS m
      SET vt = clock_timestamp() + make_interval(secs => $2),
          read_ct = m.read_ct + 1
      FROM picked
      WHERE m.msg_id = picked.msg_id
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
    )
    SELECT * FROM updated ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING qty, vt, coalesce(conditional, '{}'::jsonb);
END;
$fn$;

-- Like read, but when nothing is visible polls every poll_interval_ms until something is or
-- max_poll_seconds have passed (then returns no rows). Runs each poll in a fresh snapshot, so
-- messages committed meanwhile are found (at READ COMMITTED, the default).
CREATE FUNCTION pgmq.read_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
DECLARE
  stop_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
  LOOP
    RETURN QUERY SELECT * FROM pgmq.read(queue_name, vt, qty, conditional);
    IF FOUND OR clock_timestamp() >= stop_at THEN
      RETURN;
    END IF;
    PERFORM pg_sleep(
      greatest(0, least(poll_interval_ms / 1000.0, extract(epoch FROM stop_at - clock_timestamp())))
    );
  END LOOP;
END;
$fn$;

-- Reads and deletes up to qty (default 1) visible messages, oldest first, skipping locked rows.
CREATE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH picked AS (
      SELECT q.msg_id
      FROM pgmq.%1$I AS q
      WHERE q.vt <= clock_timestamp()
      ORDER BY q.msg_id
      LIMIT $1
      FOR UPDATE SKIP LOCKED
    ),
    deleted AS (
      DELETE FROM pgmq.%1$I AS m
      USING picked
      WHERE m.msg_id = picked.msg_id
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
    )
    SELECT * FROM deleted ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING qty;
END;
$fn$;

-- Makes a message visible again vt seconds from now (whether or not it is currently visible);
-- returns it, or no rows when it does not exist.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    UPDATE pgmq.%I AS m
    SET vt = clock_timestamp() + make_interval(secs => $2)
    WHERE m.msg_id = $1
    RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING msg_id, vt;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Deleting and archiving
------------------------------------------------------------------------------------------------------

-- Deletes one message; returns whether it existed.
CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  deleted_id bigint;
BEGIN
  EXECUTE format('DELETE FROM pgmq.%I AS m WHERE m.msg_id = $1 RETURNING m.msg_id', pgmq.format_table_name(queue_name, 'q'))
    INTO deleted_id
    USING msg_id;
  RETURN deleted_id IS NOT NULL;
END;
$fn$;

-- Deletes messages; returns the ids that existed.
CREATE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'DELETE FROM pgmq.%I AS m WHERE m.msg_id = ANY($1) RETURNING m.msg_id',
    pgmq.format_table_name(queue_name, 'q')
  ) USING msg_ids;
END;
$fn$;

-- Moves one message to the queue's archive; returns whether it existed.
CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  archived_id bigint;
BEGIN
  EXECUTE format(
    $sql$
    WITH moved AS (
      DELETE FROM pgmq.%I AS m
      WHERE m.msg_id = $1
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
    )
    INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
    SELECT moved.msg_id, moved.read_ct, moved.enqueued_at, moved.vt, moved.message, moved.headers
    FROM moved
    RETURNING msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'),
    pgmq.format_table_name(queue_name, 'a')
  ) INTO archived_id USING msg_id;
  RETURN archived_id IS NOT NULL;
END;
$fn$;

-- Moves messages to the queue's archive; returns the ids that existed.
CREATE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH moved AS (
      DELETE FROM pgmq.%I AS m
      WHERE m.msg_id = ANY($1)
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
    )
    INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
    SELECT moved.msg_id, moved.read_ct, moved.enqueued_at, moved.vt, moved.message, moved.headers
    FROM moved
    RETURNING msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'),
    pgmq.format_table_name(queue_name, 'a')
  ) USING msg_ids;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Metrics
------------------------------------------------------------------------------------------------------

-- Returns one queue's length, visible length, message ages and the number of messages ever sent.
CREATE FUNCTION pgmq.metrics(queue_name text)
RETURNS pgmq.metrics_result
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  result pgmq.metrics_result;
BEGIN
  EXECUTE format(
    $sql$
    SELECT
      $1::text,
      count(*)::bigint,
      extract(epoch FROM clock_timestamp() - max(q.enqueued_at))::integer,
      extract(epoch FROM clock_timestamp() - min(q.enqueued_at))::integer,
      (SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM pgmq.%I AS s),
      clock_timestamp(),
      count(*) FILTER (WHERE q.vt <= clock_timestamp())::bigint
    FROM pgmq.%I AS q
    $sql$,
    qtable || '_msg_id_seq',
    qtable
  ) INTO result USING queue_name;
  RETURN result;
END;
$fn$;

-- Returns metrics for every queue; a queue dropped while this runs is left out instead of failing the call.
CREATE FUNCTION pgmq.metrics_all()
RETURNS SETOF pgmq.metrics_result
LANGUAGE plpgsql
AS $fn$
DECLARE
  qname text;
BEGIN
  FOR qname IN SELECT m.queue_name FROM pgmq.meta AS m ORDER BY m.queue_name LOOP
    BEGIN
      RETURN NEXT pgmq.metrics(qname);
    EXCEPTION WHEN undefined_table THEN
      CONTINUE;
    END;
  END LOOP;
END;
$fn$;
