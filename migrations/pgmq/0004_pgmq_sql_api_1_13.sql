-- Brings awa's pgmq-compatible SQL API (provider=sql) up to the public API of pgmq 1.13.1: pgmq's name rules, last_read_at, timestamp visibility, arrays in set_vt, insert notifications, FIFO groups, topics, pg_monitor grants.
-- awa:when provider=sql
--
-- Written for awa from pgmq's documented signatures, return types, table layout and behaviour (docs/pgmq.md
-- lists what is deliberately different). Every table name used in dynamic SQL comes from
-- pgmq.format_table_name and is interpolated with format('%I'); every value is passed with USING.
--
-- Queue names now follow pgmq: any text of 1 to 47 characters without $, ;, -- or ', mixed case and hyphens
-- included. Table names are the lower-cased name (queue MyQueue lives in pgmq.q_myqueue); pgmq.meta keeps the
-- name as given. awa also refuses names longer than 47 bytes, so no derived identifier is ever truncated.
--
-- message_record and metrics_result gain columns (last_read_at; default_partition_length), so both types are
-- re-created: the functions returning them are dropped with them and re-created below.

------------------------------------------------------------------------------------------------------
-- Names
------------------------------------------------------------------------------------------------------

-- Raises invalid_parameter_value (22023) unless queue_name can name a new queue: 1 to 47 characters (and
-- bytes), none of $ ; -- '.
CREATE OR REPLACE FUNCTION pgmq.validate_queue_name(queue_name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  IF queue_name IS NULL OR queue_name = '' THEN
    RAISE EXCEPTION 'pgmq queue name must not be empty'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass a name of 1 to 47 characters, e.g. orders__email.';
  END IF;
  IF length(queue_name) > 47 THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is 47 characters (got % characters: "%")',
        length(queue_name), queue_name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Shorten the queue name to at most 47 characters.';
  END IF;
  IF octet_length(queue_name) > 47 THEN
    RAISE EXCEPTION 'queue name "%" is % bytes long; awa allows at most 47 bytes so that its table names fit Postgres''s 63-byte identifiers',
        queue_name, octet_length(queue_name)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use fewer multi-byte characters in the queue name.';
  END IF;
  PERFORM pgmq.format_table_name(queue_name, 'q');
END;
$fn$;

-- Returns the table of a queue, prefix 'q' (queue) or 'a' (archive) plus '_' plus the name, lower-cased as
-- pgmq does. Raises invalid_parameter_value for a NULL name or one holding $, ;, -- or '.
CREATE OR REPLACE FUNCTION pgmq.format_table_name(queue_name text, prefix text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  IF queue_name IS NULL THEN
    RAISE EXCEPTION 'pgmq queue name must not be NULL'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF strpos(queue_name, '$') > 0 OR strpos(queue_name, ';') > 0 OR strpos(queue_name, '--') > 0
     OR strpos(queue_name, '''') > 0 THEN
    RAISE EXCEPTION 'queue name contains invalid characters: $, ;, --, or '' (got "%")', queue_name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Rename the queue without $, ;, -- or single quotes.';
  END IF;
  RETURN lower(prefix || '_' || queue_name);
END;
$fn$;

-- The FIFO group of a message: its x-pgmq-group header, or '_default_fifo_group' without one.
CREATE FUNCTION pgmq._fifo_group(headers jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
  SELECT coalesce(headers ->> 'x-pgmq-group', '_default_fifo_group');
$fn$;

-- Turns a visibility given as text (by clients that send untyped parameters) into a time: a whole number
-- is seconds from now, anything else is read as a timestamp.
CREATE FUNCTION pgmq._vt_from_text(vt text)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  IF vt ~ '^\s*[+-]?[0-9]+\s*$' THEN
    RETURN clock_timestamp() + make_interval(secs => vt::integer);
  END IF;
  RETURN vt::timestamptz;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Tables and types
------------------------------------------------------------------------------------------------------

-- Existing queues and archives gain last_read_at (appended; every statement here names its columns).
DO $upgrade$
DECLARE
  q record;
BEGIN
  FOR q IN SELECT m.queue_name FROM pgmq.meta AS m LOOP
    EXECUTE format('ALTER TABLE pgmq.%I ADD COLUMN IF NOT EXISTS last_read_at timestamptz',
                   pgmq.format_table_name(q.queue_name, 'q'));
    EXECUTE format('ALTER TABLE pgmq.%I ADD COLUMN IF NOT EXISTS last_read_at timestamptz',
                   pgmq.format_table_name(q.queue_name, 'a'));
  END LOOP;
END;
$upgrade$;

DROP TYPE pgmq.message_record CASCADE;

-- A message as returned by read, read_with_poll, the grouped reads, pop and set_vt (pgmq >= 1.10 layout).
CREATE TYPE pgmq.message_record AS (
  msg_id bigint,
  read_ct integer,
  enqueued_at timestamptz,
  last_read_at timestamptz,
  vt timestamptz,
  message jsonb,
  headers jsonb
);

DROP TYPE pgmq.metrics_result CASCADE;

-- A queue's metrics as returned by metrics and metrics_all (pgmq >= 1.12.1 layout).
CREATE TYPE pgmq.metrics_result AS (
  queue_name text,
  queue_length bigint,
  newest_msg_age_sec integer,
  oldest_msg_age_sec integer,
  total_messages bigint,
  scrape_time timestamptz,
  queue_visible_length bigint,
  default_partition_length bigint
);

-- Queues whose inserts notify (see enable_notify_insert), at most once per throttle interval.
CREATE UNLOGGED TABLE pgmq.notify_insert_throttle (
  queue_name varchar NOT NULL
    CONSTRAINT notify_insert_throttle_queue_name_key UNIQUE
    CONSTRAINT notify_insert_throttle_meta_queue_name_fk REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
  throttle_interval_ms integer NOT NULL DEFAULT 0,
  last_notified_at timestamptz NOT NULL DEFAULT to_timestamp(0)
);

CREATE INDEX idx_notify_throttle_active
  ON pgmq.notify_insert_throttle (queue_name, last_notified_at)
  WHERE throttle_interval_ms > 0;

-- The regular expression a topic pattern compiles to: '*' is one dot-free segment, '#' any run of
-- characters, everything else literal.
CREATE FUNCTION pgmq._topic_pattern_regex(pattern text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $fn$
  SELECT '^'
    || replace(
         replace(regexp_replace(pattern, '([^A-Za-z0-9_*#-])', '\\\1', 'g'), '*', '[^.]+'),
         '#', '.*')
    || '$';
$fn$;

-- Topic bindings: a message sent with a routing key goes to every queue bound by a matching pattern.
CREATE TABLE pgmq.topic_bindings (
  pattern text NOT NULL,
  queue_name text NOT NULL
    CONSTRAINT topic_bindings_meta_queue_name_fk REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
  compiled_regex text GENERATED ALWAYS AS (pgmq._topic_pattern_regex(pattern)) STORED,
  CONSTRAINT topic_bindings_unique_pattern_queue UNIQUE (pattern, queue_name)
);

CREATE INDEX idx_topic_bindings_covering ON pgmq.topic_bindings (pattern) INCLUDE (queue_name, compiled_regex);

------------------------------------------------------------------------------------------------------
-- Queues
------------------------------------------------------------------------------------------------------

-- Creates the queue table, its archive table, their indexes and the meta row; a no-op for an existing queue.
CREATE OR REPLACE FUNCTION pgmq._create_queue(queue_name text, unlogged boolean)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text;
  atable text;
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  qtable := pgmq.format_table_name(queue_name, 'q');
  atable := pgmq.format_table_name(queue_name, 'a');
  PERFORM pgmq.acquire_queue_lock(queue_name);

  -- %s only ever receives one of the two constant keywords below.
  EXECUTE format(
    $sql$
    CREATE %s TABLE IF NOT EXISTS pgmq.%I (
      msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
      read_ct integer NOT NULL DEFAULT 0,
      enqueued_at timestamptz NOT NULL DEFAULT now(),
      last_read_at timestamptz,
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
      last_read_at timestamptz,
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

DROP FUNCTION pgmq.create_partitioned(text, text, text);

-- Partitioned queues need pg_partman and the pgmq extension; this provider refuses them clearly.
CREATE FUNCTION pgmq.create_partitioned(
  queue_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  premake integer DEFAULT 4
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

-- Converting an archive to a partitioned table needs pg_partman; this provider refuses it clearly.
CREATE FUNCTION pgmq.convert_archive_partitioned(
  table_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  leading_partition integer DEFAULT 10
)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  RAISE EXCEPTION 'partitioned archives are not supported by awa''s pgmq SQL provider (queue "%")', table_name
    USING ERRCODE = 'feature_not_supported',
          HINT = 'Install the pgmq extension and pg_partman on the server to partition archives.';
END;
$fn$;

-- Deprecated in pgmq and a no-op there too (archives are not extension members); warns like pgmq.
CREATE OR REPLACE FUNCTION pgmq.detach_archive(queue_name text)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  PERFORM pgmq.format_table_name(queue_name, 'a');
  RAISE WARNING 'pgmq.detach_archive(queue_name) is deprecated and does nothing: archive tables are not extension members';
END;
$fn$;

-- The older two-argument form, kept by pgmq for its clients (tembo-pgmq-python calls it): warns that it is
-- deprecated, drops the queue like drop_queue(queue_name) and returns true.
CREATE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
BEGIN
  RAISE WARNING 'pgmq.drop_queue(queue_name, partitioned) is deprecated; call pgmq.drop_queue(queue_name)';
  PERFORM pgmq.drop_queue(queue_name);
  RETURN true;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Sending
------------------------------------------------------------------------------------------------------

-- Sends messages in one statement, headers[i] going with msgs[i] (headers NULL = none), visible from
-- `delay` (now when NULL); returns their ids in the order of msgs. Refuses a NULL or empty batch, and
-- headers whose count differs from the messages'.
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
BEGIN
  IF coalesce(cardinality(msgs), 0) = 0 THEN
    RAISE EXCEPTION 'pgmq.send_batch needs at least one message (msgs is NULL or empty)'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
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

------------------------------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------------------------------

-- Reads up to qty visible messages (oldest first), optionally only those whose message contains
-- `conditional`, and hides them until `vt`. Rows locked by a concurrent reader are skipped, so two readers
-- never receive the same message; every returned message has read_ct incremented and last_read_at set.
CREATE FUNCTION pgmq.read(queue_name text, vt timestamptz, qty integer, conditional jsonb DEFAULT '{}')
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
      SET vt = $2,
          read_ct = m.read_ct + 1,
          last_read_at = clock_timestamp()
      FROM picked
      WHERE m.msg_id = picked.msg_id
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers
    )
    SELECT * FROM updated ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING qty, vt, coalesce(conditional, '{}'::jsonb);
END;
$fn$;

-- Like read, hiding the messages for vt seconds from now.
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.read(queue_name, clock_timestamp() + make_interval(secs => vt), qty, conditional);
$fn$;

-- Like read, for clients that send untyped parameters (where read(text, integer, ...) and
-- read(text, timestamptz, ...) would be ambiguous): vt is seconds when a whole number, else a timestamp.
CREATE FUNCTION pgmq.read(queue_name text, vt text, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.read(queue_name, pgmq._vt_from_text(vt), qty, conditional);
$fn$;

-- Like read, but when nothing is visible polls every poll_interval_ms until something is or
-- max_poll_seconds have passed, then returns no rows. As in pgmq, the deadline is checked before each
-- read, so max_poll_seconds <= 0 returns no rows without reading. Each poll runs in a fresh snapshot, so
-- messages committed meanwhile are found (at READ COMMITTED, the default).
CREATE FUNCTION pgmq.read_with_poll(
  queue_name text,
  vt timestamptz,
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
    IF clock_timestamp() >= stop_at THEN
      RETURN;
    END IF;
    RETURN QUERY SELECT * FROM pgmq.read(queue_name, vt, qty, conditional);
    IF FOUND THEN
      RETURN;
    END IF;
    PERFORM pg_sleep(
      greatest(0, least(poll_interval_ms / 1000.0, extract(epoch FROM stop_at - clock_timestamp())))
    );
  END LOOP;
END;
$fn$;

-- Like read_with_poll, hiding the messages for vt seconds from the call.
CREATE FUNCTION pgmq.read_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'
)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.read_with_poll(
    queue_name, clock_timestamp() + make_interval(secs => vt), qty, max_poll_seconds, poll_interval_ms, conditional
  );
$fn$;

-- Like read_with_poll, for clients that send untyped parameters (see read(text, text, integer, jsonb)).
CREATE FUNCTION pgmq.read_with_poll(
  queue_name text,
  vt text,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'
)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.read_with_poll(
    queue_name, pgmq._vt_from_text(vt), qty, max_poll_seconds, poll_interval_ms, conditional
  );
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
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers
    )
    SELECT * FROM deleted ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING qty;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- FIFO groups (messages grouped by their x-pgmq-group header)
------------------------------------------------------------------------------------------------------

-- The grouped reads share one rule: a group is readable only while its oldest message (visible or not) is
-- visible, so a group never has two messages in flight out of order. Heads are locked with SKIP LOCKED, so
-- a concurrent reader skips a whole group another reader is taking. `strategy` picks the order:
--   fill         the oldest group's messages first, then the next group's (SQS FIFO style)
--   round_robin  the first message of every group, then the second of every group, ...
--   head         only the oldest message of each group
-- Returns the messages in that order, hidden until vt, read_ct incremented, last_read_at set.
CREATE FUNCTION pgmq._read_grouped(queue_name text, vt timestamptz, qty integer, strategy text)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH heads AS (
      SELECT DISTINCT ON (pgmq._fifo_group(q.headers)) q.msg_id
      FROM pgmq.%1$I AS q
      ORDER BY pgmq._fifo_group(q.headers), q.msg_id
    ),
    claimed_heads AS (
      SELECT q.msg_id, pgmq._fifo_group(q.headers) AS grp
      FROM pgmq.%1$I AS q
      WHERE q.msg_id IN (SELECT h.msg_id FROM heads AS h)
        AND q.vt <= clock_timestamp()
      FOR UPDATE OF q SKIP LOCKED
    ),
    ranked AS (
      SELECT q.msg_id,
             dense_rank() OVER (ORDER BY h.msg_id) AS group_rank,
             row_number() OVER (PARTITION BY h.grp ORDER BY q.msg_id) AS rank_in_group
      FROM claimed_heads AS h
      JOIN pgmq.%1$I AS q
        ON pgmq._fifo_group(q.headers) = h.grp
       AND q.msg_id >= h.msg_id
       AND q.vt <= clock_timestamp()
    ),
    ordered AS (
      SELECT r.msg_id,
             row_number() OVER (
               ORDER BY
                 CASE WHEN $3 = 'round_robin' THEN r.rank_in_group ELSE r.group_rank END,
                 CASE WHEN $3 = 'round_robin' THEN r.group_rank ELSE r.rank_in_group END
             ) AS pick_order
      FROM ranked AS r
      WHERE $3 <> 'head' OR r.rank_in_group = 1
    ),
    locked AS (
      SELECT q.msg_id, o.pick_order
      FROM pgmq.%1$I AS q
      JOIN ordered AS o ON o.msg_id = q.msg_id
      WHERE o.pick_order <= $1
      FOR UPDATE OF q SKIP LOCKED
    ),
    updated AS (
      UPDATE pgmq.%1$I AS m
      SET vt = $2,
          read_ct = m.read_ct + 1,
          last_read_at = clock_timestamp()
      FROM locked
      WHERE m.msg_id = locked.msg_id
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers, locked.pick_order
    )
    SELECT u.msg_id, u.read_ct, u.enqueued_at, u.last_read_at, u.vt, u.message, u.headers
    FROM updated AS u
    ORDER BY u.pick_order
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING qty, vt, strategy;
END;
$fn$;

-- Polls a grouped read (see _read_grouped) the way read_with_poll polls read.
CREATE FUNCTION pgmq._read_grouped_with_poll(
  queue_name text,
  vt timestamptz,
  qty integer,
  max_poll_seconds integer,
  poll_interval_ms integer,
  strategy text
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
DECLARE
  stop_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
  LOOP
    IF clock_timestamp() >= stop_at THEN
      RETURN;
    END IF;
    RETURN QUERY SELECT * FROM pgmq._read_grouped(queue_name, vt, qty, strategy);
    IF FOUND THEN
      RETURN;
    END IF;
    PERFORM pg_sleep(
      greatest(0, least(poll_interval_ms / 1000.0, extract(epoch FROM stop_at - clock_timestamp())))
    );
  END LOOP;
END;
$fn$;

-- Reads up to qty messages, filling the batch from the oldest readable FIFO group first (SQS FIFO style).
CREATE FUNCTION pgmq.read_grouped(queue_name text, vt timestamptz, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped(queue_name, vt, qty, 'fill');
$fn$;

-- Like read_grouped, hiding the messages for vt seconds from now.
CREATE FUNCTION pgmq.read_grouped(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped(queue_name, clock_timestamp() + make_interval(secs => vt), qty, 'fill');
$fn$;

-- Polling read_grouped.
CREATE FUNCTION pgmq.read_grouped_with_poll(
  queue_name text,
  vt timestamptz,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped_with_poll(queue_name, vt, qty, max_poll_seconds, poll_interval_ms, 'fill');
$fn$;

-- Polling read_grouped, hiding the messages for vt seconds from the call.
CREATE FUNCTION pgmq.read_grouped_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped_with_poll(
    queue_name, clock_timestamp() + make_interval(secs => vt), qty, max_poll_seconds, poll_interval_ms, 'fill'
  );
$fn$;

-- Reads up to qty messages round-robin across the readable FIFO groups (first of each, then second, ...).
CREATE FUNCTION pgmq.read_grouped_rr(queue_name text, vt timestamptz, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped(queue_name, vt, qty, 'round_robin');
$fn$;

-- Like read_grouped_rr, hiding the messages for vt seconds from now.
CREATE FUNCTION pgmq.read_grouped_rr(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped(queue_name, clock_timestamp() + make_interval(secs => vt), qty, 'round_robin');
$fn$;

-- Polling read_grouped_rr.
CREATE FUNCTION pgmq.read_grouped_rr_with_poll(
  queue_name text,
  vt timestamptz,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped_with_poll(queue_name, vt, qty, max_poll_seconds, poll_interval_ms, 'round_robin');
$fn$;

-- Polling read_grouped_rr, hiding the messages for vt seconds from the call.
CREATE FUNCTION pgmq.read_grouped_rr_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped_with_poll(
    queue_name, clock_timestamp() + make_interval(secs => vt), qty, max_poll_seconds, poll_interval_ms, 'round_robin'
  );
$fn$;

-- Reads the oldest message of up to qty readable FIFO groups, oldest group first.
CREATE FUNCTION pgmq.read_grouped_head(queue_name text, vt timestamptz, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped(queue_name, vt, qty, 'head');
$fn$;

-- Like read_grouped_head, hiding the messages for vt seconds from now.
CREATE FUNCTION pgmq.read_grouped_head(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq._read_grouped(queue_name, clock_timestamp() + make_interval(secs => vt), qty, 'head');
$fn$;

-- Creates an index that serves the grouped reads (on the FIFO group and msg_id); a no-op when it exists.
CREATE FUNCTION pgmq.create_fifo_index(queue_name text)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
BEGIN
  EXECUTE format(
    'CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (pgmq._fifo_group(headers), msg_id)',
    qtable || '_fifo_idx',
    qtable
  );
END;
$fn$;

-- Runs create_fifo_index for every queue.
CREATE FUNCTION pgmq.create_fifo_indexes_all()
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  qname text;
BEGIN
  FOR qname IN SELECT m.queue_name FROM pgmq.meta AS m ORDER BY m.queue_name LOOP
    PERFORM pgmq.create_fifo_index(qname);
  END LOOP;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Visibility
------------------------------------------------------------------------------------------------------

-- Makes a message visible again at `vt` (whether or not it is visible now); returns it, or no rows when
-- it does not exist.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt timestamptz)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    UPDATE pgmq.%I AS m
    SET vt = $2
    WHERE m.msg_id = $1
    RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING msg_id, vt;
END;
$fn$;

-- Makes a message visible again vt seconds from now.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.set_vt(queue_name, msg_id, clock_timestamp() + make_interval(secs => vt));
$fn$;

-- Makes messages visible again at `vt`; returns those that exist, by msg_id.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt timestamptz)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH updated AS (
      UPDATE pgmq.%I AS m
      SET vt = $2
      WHERE m.msg_id = ANY($1)
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers
    )
    SELECT * FROM updated ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) USING msg_ids, vt;
END;
$fn$;

-- Makes messages visible again vt seconds from now.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.set_vt(queue_name, msg_ids, clock_timestamp() + make_interval(secs => vt));
$fn$;

-- Like set_vt, for clients that send untyped parameters (where the four typed forms would be ambiguous):
-- msg_id is an array literal ('{1,2}') or one id; vt is seconds when a whole number, else a timestamp.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id text, vt text)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  IF ltrim(msg_id) LIKE '{%' THEN
    RETURN QUERY SELECT * FROM pgmq.set_vt(queue_name, msg_id::bigint[], pgmq._vt_from_text(vt));
  ELSE
    RETURN QUERY SELECT * FROM pgmq.set_vt(queue_name, msg_id::bigint, pgmq._vt_from_text(vt));
  END IF;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Archiving
------------------------------------------------------------------------------------------------------

-- Moves one message to the queue's archive; returns whether it existed.
CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
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
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers
    )
    INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
    SELECT moved.msg_id, moved.read_ct, moved.enqueued_at, moved.last_read_at, moved.vt, moved.message, moved.headers
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
CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH moved AS (
      DELETE FROM pgmq.%I AS m
      WHERE m.msg_id = ANY($1)
      RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers
    )
    INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
    SELECT moved.msg_id, moved.read_ct, moved.enqueued_at, moved.last_read_at, moved.vt, moved.message, moved.headers
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

-- Returns one queue's length, visible length, message ages and the number of messages ever sent;
-- default_partition_length is NULL (this provider has no partitioned queues).
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
      count(*) FILTER (WHERE q.vt <= clock_timestamp())::bigint,
      NULL::bigint
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

------------------------------------------------------------------------------------------------------
-- Insert notifications (pgmq's channel naming: pgmq.q_<queue name as created>.INSERT, empty payload)
------------------------------------------------------------------------------------------------------

-- Trigger function behind enable_notify_insert: notifies pgmq.q_<queue>.<operation> unless the queue was
-- notified less than its throttle interval ago. The queue name comes as the trigger's argument.
CREATE FUNCTION pgmq.notify_queue_listeners()
RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  target text := coalesce(TG_ARGV[0], substring(TG_TABLE_NAME FROM 3));
  due integer;
BEGIN
  UPDATE pgmq.notify_insert_throttle AS t
  SET last_notified_at = clock_timestamp()
  WHERE t.queue_name = target
    AND (t.throttle_interval_ms = 0
         OR clock_timestamp() - t.last_notified_at >= make_interval(secs => t.throttle_interval_ms / 1000.0));
  GET DIAGNOSTICS due = ROW_COUNT;
  IF due > 0 THEN
    PERFORM pg_notify('pgmq.q_' || target || '.' || TG_OP, '');
  END IF;
  RETURN NEW;
END;
$fn$;

-- Makes every insert into the queue (plain pgmq.send included) notify channel pgmq.q_<queue_name>.INSERT
-- when its transaction commits, at most once per throttle_interval_ms (0 = every insert). Calling it again
-- replaces the interval.
CREATE FUNCTION pgmq.enable_notify_insert(queue_name text, throttle_interval_ms integer DEFAULT 250)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
BEGIN
  IF throttle_interval_ms IS NULL OR throttle_interval_ms < 0 THEN
    RAISE EXCEPTION 'throttle_interval_ms must be non-negative, got %', coalesce(throttle_interval_ms::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pgmq.meta AS m WHERE m.queue_name = enable_notify_insert.queue_name)
     OR to_regclass(format('pgmq.%I', qtable)) IS NULL THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create it first using pgmq.create()', queue_name
      USING ERRCODE = 'undefined_table';
  END IF;
  PERFORM pgmq.disable_notify_insert(queue_name);
  INSERT INTO pgmq.notify_insert_throttle AS t (queue_name, throttle_interval_ms)
  VALUES (queue_name, throttle_interval_ms)
  ON CONFLICT ON CONSTRAINT notify_insert_throttle_queue_name_key
  DO UPDATE SET throttle_interval_ms = EXCLUDED.throttle_interval_ms, last_notified_at = to_timestamp(0);
  EXECUTE format(
    $sql$
    CREATE CONSTRAINT TRIGGER trigger_notify_queue_insert_listeners
    AFTER INSERT ON pgmq.%I
    DEFERRABLE FOR EACH ROW
    EXECUTE FUNCTION pgmq.notify_queue_listeners(%L)
    $sql$,
    qtable,
    queue_name
  );
END;
$fn$;

-- Stops a queue's insert notifications; a no-op when they are off.
CREATE FUNCTION pgmq.disable_notify_insert(queue_name text)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
BEGIN
  IF to_regclass(format('pgmq.%I', qtable)) IS NOT NULL THEN
    EXECUTE format('DROP TRIGGER IF EXISTS trigger_notify_queue_insert_listeners ON pgmq.%I', qtable);
  END IF;
  DELETE FROM pgmq.notify_insert_throttle AS t WHERE t.queue_name = disable_notify_insert.queue_name;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Topics
------------------------------------------------------------------------------------------------------

-- Returns true for a valid routing key (1 to 255 of letters, digits, '.', '_', '-'; no leading, trailing
-- or doubled dot); raises invalid_parameter_value otherwise.
CREATE FUNCTION pgmq.validate_routing_key(routing_key text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  problem text;
BEGIN
  problem := CASE
    WHEN routing_key IS NULL OR routing_key = '' THEN 'routing_key cannot be NULL or empty'
    WHEN length(routing_key) > 255 THEN format('routing_key length cannot exceed 255 characters, got %s characters', length(routing_key))
    WHEN routing_key !~ '^[A-Za-z0-9._-]+$' THEN format('routing_key contains invalid characters (allowed: letters, digits, ".", "_", "-"). Got: %s', routing_key)
    WHEN left(routing_key, 1) = '.' THEN format('routing_key cannot start with a dot. Got: %s', routing_key)
    WHEN right(routing_key, 1) = '.' THEN format('routing_key cannot end with a dot. Got: %s', routing_key)
    WHEN strpos(routing_key, '..') > 0 THEN format('routing_key cannot contain consecutive dots. Got: %s', routing_key)
  END;
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION '%', problem USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN true;
END;
$fn$;

-- Returns true for a valid topic pattern (a routing key that may also hold '*' = one segment and '#' = any
-- number of segments, never '**', '##', '*#' or '#*'); raises invalid_parameter_value otherwise.
CREATE FUNCTION pgmq.validate_topic_pattern(pattern text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  problem text;
BEGIN
  problem := CASE
    WHEN pattern IS NULL OR pattern = '' THEN 'pattern cannot be NULL or empty'
    WHEN length(pattern) > 255 THEN format('pattern length cannot exceed 255 characters, got %s characters', length(pattern))
    WHEN pattern !~ '^[A-Za-z0-9._*#-]+$' THEN format('pattern contains invalid characters (allowed: letters, digits, ".", "_", "-", "*", "#"). Got: %s', pattern)
    WHEN left(pattern, 1) = '.' THEN format('pattern cannot start with a dot. Got: %s', pattern)
    WHEN right(pattern, 1) = '.' THEN format('pattern cannot end with a dot. Got: %s', pattern)
    WHEN strpos(pattern, '..') > 0 THEN format('pattern cannot contain consecutive dots. Got: %s', pattern)
    WHEN strpos(pattern, '**') > 0 THEN format('pattern cannot contain consecutive stars (**); use # for several segments. Got: %s', pattern)
    WHEN strpos(pattern, '##') > 0 THEN format('pattern cannot contain consecutive hashes (##). Got: %s', pattern)
    WHEN strpos(pattern, '*#') > 0 OR strpos(pattern, '#*') > 0 THEN format('pattern cannot contain adjacent wildcards (*# or #*). Got: %s', pattern)
  END;
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION '%', problem USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN true;
END;
$fn$;

-- Binds a queue to a topic pattern; binding the same pair again changes nothing.
CREATE FUNCTION pgmq.bind_topic(pattern text, queue_name text)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  PERFORM pgmq.validate_topic_pattern(pattern);
  IF queue_name IS NULL OR queue_name = '' THEN
    RAISE EXCEPTION 'queue_name cannot be NULL or empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pgmq.meta AS m WHERE m.queue_name = bind_topic.queue_name) THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', queue_name
      USING ERRCODE = 'undefined_table';
  END IF;
  INSERT INTO pgmq.topic_bindings (pattern, queue_name)
  VALUES (pattern, queue_name)
  ON CONFLICT ON CONSTRAINT topic_bindings_unique_pattern_queue DO NOTHING;
END;
$fn$;

-- Removes a binding; returns whether it existed.
CREATE FUNCTION pgmq.unbind_topic(pattern text, queue_name text)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  removed integer;
BEGIN
  IF pattern IS NULL OR pattern = '' THEN
    RAISE EXCEPTION 'pattern cannot be NULL or empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF queue_name IS NULL OR queue_name = '' THEN
    RAISE EXCEPTION 'queue_name cannot be NULL or empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  DELETE FROM pgmq.topic_bindings AS b
  WHERE b.pattern = unbind_topic.pattern AND b.queue_name = unbind_topic.queue_name;
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed > 0;
END;
$fn$;

-- Lists the bindings a routing key matches, by pattern; sends nothing.
CREATE FUNCTION pgmq.test_routing(routing_key text)
RETURNS TABLE (pattern text, queue_name text, compiled_regex text)
LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
  PERFORM pgmq.validate_routing_key(routing_key);
  RETURN QUERY
    SELECT b.pattern, b.queue_name, b.compiled_regex
    FROM pgmq.topic_bindings AS b
    WHERE test_routing.routing_key ~ b.compiled_regex
    ORDER BY b.pattern, b.queue_name;
END;
$fn$;

-- Sends a message to every queue bound by a pattern the routing key matches (each queue once, in name
-- order); returns how many queues received it. All or nothing: a failure rolls every send back.
CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb, headers jsonb, delay integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
  target text;
  sent integer := 0;
BEGIN
  PERFORM pgmq.validate_routing_key(routing_key);
  IF msg IS NULL THEN
    RAISE EXCEPTION 'msg cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF delay < 0 THEN
    RAISE EXCEPTION 'delay cannot be negative, got: %', delay USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR target IN
    SELECT DISTINCT b.queue_name
    FROM pgmq.topic_bindings AS b
    WHERE send_topic.routing_key ~ b.compiled_regex
    ORDER BY b.queue_name
  LOOP
    PERFORM pgmq.send(target, msg, headers, coalesce(delay, 0));
    sent := sent + 1;
  END LOOP;
  RETURN sent;
END;
$fn$;

-- send_topic without headers or delay.
CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb)
RETURNS integer
LANGUAGE sql
AS $fn$
  SELECT pgmq.send_topic(routing_key, msg, NULL::jsonb, 0);
$fn$;

-- send_topic without headers, visible after delay seconds.
CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb, delay integer)
RETURNS integer
LANGUAGE sql
AS $fn$
  SELECT pgmq.send_topic(routing_key, msg, NULL::jsonb, delay);
$fn$;

-- Sends a batch to every queue bound by a pattern the routing key matches (each queue once, in name
-- order); returns (queue_name, msg_id) for every message sent. All or nothing.
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE plpgsql
AS $fn$
DECLARE
  target text;
BEGIN
  PERFORM pgmq.validate_routing_key(routing_key);
  IF coalesce(cardinality(msgs), 0) = 0 THEN
    RAISE EXCEPTION 'pgmq.send_batch_topic needs at least one message (msgs is NULL or empty)'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
    RAISE EXCEPTION 'pgmq.send_batch_topic got % messages but % headers', cardinality(msgs), cardinality(headers)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR target IN
    SELECT DISTINCT b.queue_name
    FROM pgmq.topic_bindings AS b
    WHERE send_batch_topic.routing_key ~ b.compiled_regex
    ORDER BY b.queue_name
  LOOP
    RETURN QUERY SELECT target, s.id FROM pgmq.send_batch(target, msgs, headers, delay) AS s(id);
  END LOOP;
END;
$fn$;

-- send_batch_topic without headers, visible now.
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[])
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch_topic(routing_key, msgs, NULL::jsonb[], clock_timestamp());
$fn$;

-- send_batch_topic with headers, visible now.
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[])
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch_topic(routing_key, msgs, headers, clock_timestamp());
$fn$;

-- send_batch_topic without headers, visible after delay seconds.
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], delay integer)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch_topic(routing_key, msgs, NULL::jsonb[], clock_timestamp() + make_interval(secs => delay));
$fn$;

-- send_batch_topic without headers, visible from the timestamp `delay`.
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], delay timestamptz)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch_topic(routing_key, msgs, NULL::jsonb[], delay);
$fn$;

-- send_batch_topic with headers, visible after delay seconds.
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
AS $fn$
  SELECT * FROM pgmq.send_batch_topic(routing_key, msgs, headers, clock_timestamp() + make_interval(secs => delay));
$fn$;

------------------------------------------------------------------------------------------------------
-- Monitoring: pg_monitor may read every pgmq table and sequence, as with the pgmq extension.
------------------------------------------------------------------------------------------------------

GRANT USAGE ON SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON TABLES TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON SEQUENCES TO pg_monitor;

COMMENT ON SCHEMA pgmq IS
  'pgmq-compatible SQL API installed by awa (migration set pgmq, provider=sql), matching pgmq 1.13.1''s public functions; not the pgmq extension.';
