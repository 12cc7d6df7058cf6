-- Installs awa's pgmq helpers (schema awa_pgmq): send-and-notify, queue created/dropped notifications, and read/delete/extend of one message.
--
-- Works on top of any provider (awa's SQL API, the pgmq extension, or an existing pgmq schema): it only
-- calls pgmq's public functions and reads pgmq.meta and the documented pgmq.q_<name> columns. Needs
-- pgmq >= 1.5 (message headers).
--
-- Notifications (pg_notify; delivered when the sending transaction commits, never on rollback):
--   global channel      awa_pgmq                       every event below
--   namespace channel   awa_pgmq:<namespace>           "sent" events of the namespace's queues
-- A queue's namespace is the part of its name before the first "__" (orders__email -> orders); a name
-- with no "__", or starting with "__", is its own namespace. The colon makes the channel name need
-- quoting in SQL: LISTEN "awa_pgmq:orders".
-- Payloads are JSON objects, version "v": 1:
--   {"v":1,"event":"sent","queue":q,"namespace":ns,"count":n,"delay":seconds,
--    "msg_ids":[..],"messages":[..],"headers":[..],"truncated":false}
--     messages (and headers, present only when headers were given) are inline, in msg_ids order, only
--     while the payload stays within awa_pgmq.notify_payload_limit() bytes (7000; pg_notify's hard
--     limit is 8000). Otherwise they are left out and "truncated" is true: read the messages by id
--     (awa_pgmq.read_message). If even the ids do not fit, msg_ids is left out too and
--     "msg_id_min" / "msg_id_max" bound the batch.
--   {"v":1,"event":"queue_created"|"queue_dropped","queue":q,"namespace":ns,
--    "is_partitioned":b,"is_unlogged":b}                  (global channel only)

DO $check$
BEGIN
  IF to_regclass('pgmq.meta') IS NULL THEN
    RAISE EXCEPTION 'awa''s pgmq helpers need pgmq, but this database has no table pgmq.meta'
      USING ERRCODE = 'undefined_table',
            HINT = 'Apply the pgmq set with provider extension or sql (awa migrate --with-pgmq --pgmq-provider sql), or install pgmq first.';
  END IF;
  IF to_regprocedure('pgmq.send(text, jsonb, jsonb, integer)') IS NULL
     OR to_regprocedure('pgmq.send_batch(text, jsonb[], jsonb[], integer)') IS NULL THEN
    RAISE EXCEPTION 'awa''s pgmq helpers need pgmq >= 1.5 (send with headers), but pgmq.send(text, jsonb, jsonb, integer) is missing'
      USING ERRCODE = 'undefined_function',
            HINT = 'Upgrade pgmq (ALTER EXTENSION pgmq UPDATE) and run the migration again.';
  END IF;
END;
$check$;

CREATE SCHEMA awa_pgmq;

COMMENT ON SCHEMA awa_pgmq IS
  'awa''s pgmq helpers: send-and-notify, queue lifecycle notifications, single-message read/delete/extend.';

-- A message as returned by the single-message helpers (pgmq >= 1.5 columns, independent of pgmq's own
-- message_record, which newer pgmq versions extend).
CREATE TYPE awa_pgmq.message AS (
  msg_id bigint,
  read_ct integer,
  enqueued_at timestamptz,
  vt timestamptz,
  message jsonb,
  headers jsonb
);

------------------------------------------------------------------------------------------------------
-- Names
------------------------------------------------------------------------------------------------------

-- The largest notification payload, in bytes, that carries messages inline.
CREATE FUNCTION awa_pgmq.notify_payload_limit()
RETURNS integer
LANGUAGE sql IMMUTABLE
AS $fn$
  SELECT 7000;
$fn$;

-- The channel that receives every awa pgmq event.
CREATE FUNCTION awa_pgmq.global_channel()
RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
  SELECT 'awa_pgmq'::text;
$fn$;

-- A queue's namespace: its name up to the first "__", or the whole name when there is none (or it leads).
CREATE FUNCTION awa_pgmq.namespace_of(queue_name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $fn$
  SELECT CASE
    WHEN strpos(queue_name, '__') > 1 THEN left(queue_name, strpos(queue_name, '__') - 1)
    ELSE queue_name
  END;
$fn$;

-- The namespace channel a queue's "sent" events go to: awa_pgmq:<namespace>.
CREATE FUNCTION awa_pgmq.channel_for(queue_name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $fn$
  SELECT awa_pgmq.global_channel() || ':' || awa_pgmq.namespace_of(queue_name);
$fn$;

-- Returns the queue table of an existing queue, or raises undefined_table (42P01) naming the queue.
CREATE FUNCTION awa_pgmq._queue_table(queue_name text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
  IF queue_name IS NULL
     OR NOT EXISTS (SELECT 1 FROM pgmq.meta AS m WHERE m.queue_name = _queue_table.queue_name) THEN
    RAISE EXCEPTION 'pgmq queue "%" does not exist', coalesce(queue_name, 'NULL')
      USING ERRCODE = 'undefined_table',
            HINT = 'Create the queue first, e.g. SELECT pgmq.create(''<name>''), or check the name.';
  END IF;
  -- pgmq's own rule for a queue's table name.
  RETURN lower('q_' || queue_name);
END;
$fn$;

-- Raises invalid_parameter_value (22023) unless seconds is a non-negative number of seconds.
CREATE FUNCTION awa_pgmq._require_seconds(argument text, seconds integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  IF seconds IS NULL OR seconds < 0 THEN
    RAISE EXCEPTION '% must be a non-negative number of seconds, got %', argument, coalesce(seconds::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Send and notify
------------------------------------------------------------------------------------------------------

-- Notifies the global and the namespace channel that messages were sent (payload format in the header).
CREATE FUNCTION awa_pgmq._notify_sent(
  queue_name text,
  delay integer,
  msg_ids bigint[],
  msgs jsonb[],
  headers jsonb[]
)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  payload_limit integer := awa_pgmq.notify_payload_limit();
  base jsonb := jsonb_build_object(
    'v', 1,
    'event', 'sent',
    'queue', queue_name,
    'namespace', awa_pgmq.namespace_of(queue_name),
    'count', cardinality(msg_ids),
    'delay', delay
  );
  payload text;
BEGIN
  payload := (
    base
    || jsonb_build_object('msg_ids', to_jsonb(msg_ids), 'messages', to_jsonb(msgs), 'truncated', false)
    || CASE WHEN headers IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('headers', to_jsonb(headers)) END
  )::text;
  IF octet_length(payload) > payload_limit THEN
    payload := (base || jsonb_build_object('msg_ids', to_jsonb(msg_ids), 'truncated', true))::text;
  END IF;
  IF octet_length(payload) > payload_limit THEN
    payload := (
      base
      || jsonb_build_object(
        'msg_id_min', (SELECT min(id) FROM unnest(msg_ids) AS ids(id)),
        'msg_id_max', (SELECT max(id) FROM unnest(msg_ids) AS ids(id)),
        'truncated', true
      )
    )::text;
  END IF;
  PERFORM pg_notify(awa_pgmq.global_channel(), payload);
  PERFORM pg_notify(awa_pgmq.channel_for(queue_name), payload);
END;
$fn$;

-- Sends one message with pgmq.send (headers optional, visible after delay seconds) and notifies the
-- global and namespace channels; returns the message id. Raises when the queue does not exist.
CREATE FUNCTION awa_pgmq.send_notify(
  queue_name text,
  msg jsonb,
  headers jsonb DEFAULT NULL,
  delay integer DEFAULT 0
)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  sent_id bigint;
BEGIN
  PERFORM awa_pgmq._queue_table(queue_name);
  PERFORM awa_pgmq._require_seconds('delay', delay);
  SELECT s.id INTO STRICT sent_id FROM pgmq.send(queue_name, msg, headers, delay) AS s(id);
  PERFORM awa_pgmq._notify_sent(
    queue_name,
    delay,
    ARRAY[sent_id],
    ARRAY[msg],
    CASE WHEN headers IS NULL THEN NULL ELSE ARRAY[headers] END
  );
  RETURN sent_id;
END;
$fn$;

-- Sends messages with pgmq.send_batch (headers[i] goes with msgs[i]; NULL = none; visible after delay
-- seconds) and sends one notification for the batch on the global and namespace channels; returns
-- the ids in the order of msgs. An empty batch sends and notifies nothing.
CREATE FUNCTION awa_pgmq.send_batch_notify(
  queue_name text,
  msgs jsonb[],
  headers jsonb[] DEFAULT NULL,
  delay integer DEFAULT 0
)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  sent_ids bigint[];
BEGIN
  PERFORM awa_pgmq._queue_table(queue_name);
  PERFORM awa_pgmq._require_seconds('delay', delay);
  IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
    RAISE EXCEPTION 'awa_pgmq.send_batch_notify got % messages but % headers', cardinality(msgs), cardinality(headers)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass one headers entry per message (NULL entries allowed), or NULL for no headers.';
  END IF;
  IF coalesce(cardinality(msgs), 0) = 0 THEN
    RETURN;
  END IF;
  SELECT array_agg(s.id ORDER BY s.ord) INTO sent_ids
  FROM pgmq.send_batch(queue_name, msgs, headers, delay) WITH ORDINALITY AS s(id, ord);
  PERFORM awa_pgmq._notify_sent(queue_name, delay, sent_ids, msgs, headers);
  RETURN QUERY SELECT unnest(sent_ids);
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- One specific message
------------------------------------------------------------------------------------------------------

-- Reads one specific message if it is visible and not locked by another reader (SKIP LOCKED), hiding it
-- for vt seconds and incrementing read_ct; returns it, or no rows when it is missing, invisible or locked.
CREATE FUNCTION awa_pgmq.read_message(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF awa_pgmq.message
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := awa_pgmq._queue_table(queue_name);
BEGIN
  PERFORM awa_pgmq._require_seconds('vt', vt);
  RETURN QUERY EXECUTE format(
    $sql$
    WITH picked AS (
      SELECT q.msg_id
      FROM pgmq.%1$I AS q
      WHERE q.msg_id = $1 AND q.vt <= clock_timestamp()
      FOR UPDATE SKIP LOCKED
    )
    UPDATE pgmq.%1$I AS m
    SET vt = clock_timestamp() + make_interval(secs => $2),
        read_ct = m.read_ct + 1
    FROM picked
    WHERE m.msg_id = picked.msg_id
    RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
    $sql$,
    qtable
  ) USING msg_id, vt;
END;
$fn$;

-- Deletes one message (pgmq.delete); returns whether it existed. Raises when the queue does not exist.
CREATE FUNCTION awa_pgmq.delete_message(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
BEGIN
  PERFORM awa_pgmq._queue_table(queue_name);
  RETURN pgmq.delete(queue_name, msg_id);
END;
$fn$;

-- Pushes a message's visibility out by extra_seconds from its current vt (from now when it is already
-- visible), e.g. as a heartbeat while processing it; returns it, or no rows when it does not exist.
-- Waits for a concurrent transaction that holds the row.
CREATE FUNCTION awa_pgmq.extend_visibility(queue_name text, msg_id bigint, extra_seconds integer)
RETURNS SETOF awa_pgmq.message
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := awa_pgmq._queue_table(queue_name);
BEGIN
  PERFORM awa_pgmq._require_seconds('extra_seconds', extra_seconds);
  RETURN QUERY EXECUTE format(
    $sql$
    UPDATE pgmq.%I AS m
    SET vt = greatest(m.vt, clock_timestamp()) + make_interval(secs => $2)
    WHERE m.msg_id = $1
    RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
    $sql$,
    qtable
  ) USING msg_id, extra_seconds;
END;
$fn$;

------------------------------------------------------------------------------------------------------
-- Queue lifecycle notifications
------------------------------------------------------------------------------------------------------

-- Announces a pgmq.meta insert (queue_created) or delete (queue_dropped) on the global channel.
CREATE FUNCTION awa_pgmq._notify_queue_event()
RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
  row_data record;
BEGIN
  IF TG_OP = 'INSERT' THEN
    row_data := NEW;
  ELSE
    row_data := OLD;
  END IF;
  PERFORM pg_notify(
    awa_pgmq.global_channel(),
    jsonb_build_object(
      'v', 1,
      'event', CASE WHEN TG_OP = 'INSERT' THEN 'queue_created' ELSE 'queue_dropped' END,
      'queue', row_data.queue_name,
      'namespace', awa_pgmq.namespace_of(row_data.queue_name),
      'is_partitioned', row_data.is_partitioned,
      'is_unlogged', row_data.is_unlogged
    )::text
  );
  RETURN NULL;
END;
$fn$;

CREATE TRIGGER awa_pgmq_queue_created
AFTER INSERT ON pgmq.meta
FOR EACH ROW EXECUTE FUNCTION awa_pgmq._notify_queue_event();

CREATE TRIGGER awa_pgmq_queue_dropped
AFTER DELETE ON pgmq.meta
FOR EACH ROW EXECUTE FUNCTION awa_pgmq._notify_queue_event();
