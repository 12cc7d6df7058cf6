-- SQL producer API: awa.insert_job and awa.insert_jobs enqueue from plain SQL (psql, any language, triggers) into the engine the storage state names, with the TypeScript producer's limits, unique keys byte-identical to @awa/runtime's UniqueKey, and the same wake-up NOTIFY.

-- A JSON number as JavaScript prints it after JSON.parse (Number#toString): the nearest double, its shortest
-- round-trip digits, JavaScript's rule for fixed or exponent form. Postgres's float8 output (extra_float_digits
-- = 1) is shortest among decimals strictly inside the double's rounding interval; JavaScript also takes one on
-- its boundary (which reads back as the double by ties-to-even), so a shorter boundary decimal is looked for:
-- it is the floor or the ceiling of Postgres's digits at fewer places. Raises 22003 for a number no double can
-- hold (JavaScript would read Infinity).
CREATE FUNCTION awa.json_number_text(p_number numeric) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET extra_float_digits = 1
AS $fn$
DECLARE
  m text[];
  v_digits text;
  v_all integer;
  v_point integer;
  v_k integer;
  v_x float8 := p_number::float8;
  v_head text;
  v_cand text;
  v_value numeric;
BEGIN
  m := regexp_match(v_x::text, '^(-?)([0-9]+)(?:\.([0-9]+))?(?:e([-+][0-9]+))?$');
  IF m IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('%s has no JSON form', p_number);
  END IF;
  -- value = 0.<digits> * 10^point
  v_digits := m[2] || coalesce(m[3], '');
  v_point := length(m[2]) + coalesce(m[4]::integer, 0);
  v_all := length(v_digits);
  v_digits := ltrim(v_digits, '0');
  v_point := v_point - (v_all - length(v_digits));
  v_digits := rtrim(v_digits, '0');
  IF v_digits = '' THEN
    RETURN '0';
  END IF;
  v_k := length(v_digits);
  <<shorter>>
  FOR p IN 1 .. v_k - 1 LOOP
    v_head := left(v_digits, p);
    FOREACH v_cand IN ARRAY ARRAY[v_head, (v_head::numeric + 1)::text] LOOP
      v_value := ('0.' || v_cand || 'e' || (v_point + length(v_cand) - p))::numeric;
      -- A candidate out of the doubles' range is never the one (and float8 input would refuse it).
      CONTINUE WHEN v_value >= 1.7976931348623158e308 OR v_value < 4.9406564584124654e-324;
      IF (m[1] || v_value::text)::float8 = v_x THEN
        v_point := v_point + length(v_cand) - p;
        v_digits := rtrim(v_cand, '0');
        v_k := length(v_digits);
        EXIT shorter;
      END IF;
    END LOOP;
  END LOOP;
  IF v_k <= v_point AND v_point <= 21 THEN
    RETURN m[1] || v_digits || repeat('0', v_point - v_k);
  ELSIF 0 < v_point AND v_point <= 21 THEN
    RETURN m[1] || left(v_digits, v_point) || '.' || substr(v_digits, v_point + 1);
  ELSIF -6 < v_point AND v_point <= 0 THEN
    RETURN m[1] || '0.' || repeat('0', -v_point) || v_digits;
  END IF;
  RETURN m[1] || left(v_digits, 1) || CASE WHEN v_k > 1 THEN '.' || substr(v_digits, 2) ELSE '' END
    || 'e' || CASE WHEN v_point > 0 THEN '+' ELSE '-' END || abs(v_point - 1)::text;
END
$fn$;

COMMENT ON FUNCTION awa.json_number_text(numeric) IS
  'A JSON number as JavaScript prints it after JSON.parse (nearest double, shortest digits, JS fixed/exponent form).';

-- A sort key that orders strings as JavaScript's default sort does (by UTF-16 code units): the UTF-16BE bytes.
CREATE FUNCTION awa.utf16_sort_key(p_text text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT coalesce(string_agg(
    CASE WHEN c.cp < 65536 THEN decode(lpad(to_hex(c.cp), 4, '0'), 'hex')
         ELSE decode(to_hex(55296 + ((c.cp - 65536) >> 10)) || to_hex(56320 + ((c.cp - 65536) & 1023)), 'hex') END,
    ''::bytea ORDER BY c.o), ''::bytea)
  FROM (SELECT ascii(s.ch) AS cp, s.o FROM regexp_split_to_table(p_text, '') WITH ORDINALITY AS s(ch, o)
        WHERE s.ch <> '') c
$fn$;

-- Canonical JSON text, byte for byte what @awa/model's canonicalJson gives for the value JSON.parse reads
-- from it: object keys sorted by UTF-16 code units at every level, no whitespace, strings escaped as
-- JSON.stringify does, numbers as JavaScript prints them. Used for unique keys and payload sizes.
CREATE FUNCTION awa.canonical_json(p_value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
  v_text text;
BEGIN
  CASE jsonb_typeof(p_value)
    WHEN 'object' THEN
      -- UTF-8 byte order is UTF-16 order unless a key holds a character from U+E000 up.
      IF EXISTS (SELECT 1 FROM jsonb_object_keys(p_value) k WHERE k ~ '[\uE000-\U0010FFFF]') THEN
        RETURN '{' || coalesce((SELECT string_agg(to_json(e.key)::text || ':' || awa.canonical_json(e.value), ','
                                                  ORDER BY awa.utf16_sort_key(e.key))
                                FROM jsonb_each(p_value) e), '') || '}';
      END IF;
      RETURN '{' || coalesce((SELECT string_agg(to_json(e.key)::text || ':' || awa.canonical_json(e.value), ','
                                                ORDER BY convert_to(e.key, 'UTF8'))
                              FROM jsonb_each(p_value) e), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || coalesce((SELECT string_agg(awa.canonical_json(e.value), ',' ORDER BY e.o)
                              FROM jsonb_array_elements(p_value) WITH ORDINALITY AS e(value, o)), '') || ']';
    WHEN 'number' THEN
      v_text := p_value::text;
      -- Integers of up to 15 digits print the same in both; everything else goes through the double.
      IF v_text ~ '^-?(0|[1-9][0-9]{0,14})$' THEN
        RETURN v_text;
      END IF;
      RETURN awa.json_number_text(v_text::numeric);
    ELSE
      -- Strings (jsonb escapes exactly as JSON.stringify does), true, false, null.
      RETURN p_value::text;
  END CASE;
END
$fn$;

COMMENT ON FUNCTION awa.canonical_json(jsonb) IS
  'Canonical JSON text (keys sorted by UTF-16 code units, no whitespace, JavaScript number form), byte-identical to @awa/model canonicalJson.';

-- A job's unique key as lowercase hex, byte-identical to @awa/runtime's uniqueKey: SHA-256 over the canonical
-- JSON of {k: kind, q: queue (by queue), a: args (by args), b: start of the run time's bucket in epoch ms}.
CREATE FUNCTION awa.unique_key(p_kind text, p_queue text, p_args jsonb, p_run_at timestamptz,
  p_by_queue boolean DEFAULT false, p_by_args boolean DEFAULT true, p_period_ms numeric DEFAULT NULL)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
  SELECT encode(sha256(convert_to(awa.canonical_json(
    jsonb_build_object('k', p_kind)
    || CASE WHEN p_by_queue THEN jsonb_build_object('q', p_queue) ELSE '{}'::jsonb END
    || CASE WHEN p_by_args THEN jsonb_build_object('a', p_args) ELSE '{}'::jsonb END
    || CASE WHEN p_period_ms IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('b',
         -- Epoch milliseconds (floored, as a JavaScript Date holds them) from whole seconds plus the
         -- sub-second microseconds, exact whatever type extract returns.
         floor((extract(epoch FROM date_trunc('second', p_run_at))::bigint * 1000
                + (extract(microseconds FROM p_run_at)::bigint % 1000000) / 1000) / p_period_ms) * p_period_ms) END
  ), 'UTF8')), 'hex')
$fn$;

COMMENT ON FUNCTION awa.unique_key(text, text, jsonb, timestamptz, boolean, boolean, numeric) IS
  'A job''s unique key (hex), byte-identical to the one @awa/runtime computes for the same kind, queue, args, run time and unique options.';

-- A value as the insert errors show it: strings quoted (cut at 80 characters), arrays and objects by kind.
CREATE FUNCTION awa.insert_show(p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE jsonb_typeof(p_value)
    WHEN 'string' THEN CASE WHEN char_length(p_value #>> '{}') > 80
                            THEN to_json(left(p_value #>> '{}', 80) || '…')::text ELSE p_value::text END
    WHEN 'object' THEN 'an object'
    WHEN 'array' THEN 'an array'
    WHEN 'number' THEN left(p_value::text, 40)
    ELSE coalesce(p_value::text, 'NULL') END
$fn$;

-- Refuses an insert: SQLSTATE p_code (22023 invalid_parameter_value unless said), a message naming where,
-- the option and what was expected, DETAIL = the option, HINT = what to do.
CREATE FUNCTION awa.insert_refuse(p_where text, p_kind text, p_option text, p_got text, p_expected text,
  p_hint text DEFAULT NULL, p_code text DEFAULT '22023') RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION USING ERRCODE = p_code,
    MESSAGE = CASE WHEN p_option = 'kind' OR p_kind IS NULL
      THEN format('%s: invalid %s: got %s, expected %s. Nothing was inserted.', p_where,
        CASE WHEN p_option = 'kind' THEN 'job kind' ELSE p_option END, p_got, p_expected)
      ELSE format('%s: invalid %s for job kind %s: got %s, expected %s. Nothing was inserted.', p_where,
        CASE WHEN p_option IN ('args', 'options', 'job') THEN p_option ELSE format('option %s', p_option) END,
        to_json(p_kind)::text, p_got, p_expected) END,
    DETAIL = p_option,
    HINT = coalesce(p_hint, 'Fix the value and insert again; see docs/sql-api.md for every option.');
END
$fn$;

-- Milliseconds of a duration given as a JSON number (milliseconds) or a string Postgres reads as an interval
-- ('5 minutes', '250 ms', 'PT5S'); NULL when it is neither (the caller refuses it).
CREATE FUNCTION awa.insert_duration_ms(p_value jsonb) RETURNS numeric
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
  IF jsonb_typeof(p_value) = 'number' THEN
    RETURN (p_value #>> '{}')::numeric;
  ELSIF jsonb_typeof(p_value) = 'string' THEN
    BEGIN
      RETURN extract(epoch FROM (p_value #>> '{}')::interval) * 1000;
    EXCEPTION WHEN data_exception THEN
      RETURN NULL;
    END;
  END IF;
  RETURN NULL;
END
$fn$;

-- Checks that every number in a payload fits a double (JavaScript reads others as Infinity or 0), and its
-- size in bytes of compact JSON (as JSON.stringify writes it) is within p_limit. Refuses otherwise.
CREATE FUNCTION awa.insert_check_payload(p_where text, p_kind text, p_field text, p_value jsonb, p_limit integer)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  v_numbers bigint;
  v_doubles integer;
  v_number jsonb;
  v_bytes bigint;
BEGIN
  SELECT count(*) INTO v_numbers FROM jsonb_path_query(p_value, 'strict $.** ? (@.type() == "number")');
  IF v_numbers > 0 THEN
    -- Silently, .double() drops the items it cannot convert (and stops there): fewer means one failed.
    v_doubles := jsonb_array_length(
      jsonb_path_query_array(p_value, 'strict $.** ? (@.type() == "number").double()', '{}', true));
    IF v_doubles < v_numbers THEN
      FOR v_number IN SELECT n FROM jsonb_path_query(p_value, 'strict $.** ? (@.type() == "number")') n LOOP
        BEGIN
          PERFORM (v_number #>> '{}')::float8;
        EXCEPTION WHEN OTHERS THEN
          PERFORM awa.insert_refuse(p_where, p_kind, p_field,
            format('a number %s', awa.insert_show(v_number)),
            'numbers a double can hold (JavaScript workers would read this one as Infinity or 0)',
            'Send such a number as a string.');
        END;
      END LOOP;
    END IF;
  END IF;
  -- jsonb's text is never shorter than compact JSON, so only a long one needs the exact count.
  IF octet_length(p_value::text) > p_limit THEN
    v_bytes := octet_length(convert_to(awa.canonical_json(p_value), 'UTF8'));
    IF v_bytes > p_limit THEN
      PERFORM awa.insert_refuse(p_where, p_kind, p_field, format('%s bytes of JSON', v_bytes),
        format('at most %s bytes', p_limit), 'Store large data elsewhere and pass a reference in the job.', '54000');
    END IF;
  END IF;
END
$fn$;

-- One validated job, ready for either engine.
CREATE TYPE awa.insert_job_row AS (
  kind text,
  queue text,
  args jsonb,
  priority smallint,
  max_attempts integer,
  run_at timestamptz,
  timeout_ms integer,
  tags text[],
  metadata jsonb,
  unique_key text,
  unique_states text[]
);

-- Validates one job exactly as the TypeScript producer does (kind, args, then queue, priority, max_attempts,
-- run_at, delay, timeout, tags, metadata, unique) and resolves it; refuses the first problem found.
CREATE FUNCTION awa.insert_job_resolve(p_where text, p_kind text, p_args jsonb, p_options jsonb)
RETURNS awa.insert_job_row LANGUAGE plpgsql AS $fn$
DECLARE
  c_options constant text[] := ARRAY['queue', 'priority', 'max_attempts', 'run_at', 'delay', 'timeout', 'tags',
    'metadata', 'unique'];
  c_unique constant text[] := ARRAY['by_queue', 'by_args', 'by_period', 'states'];
  c_states constant text[] := ARRAY['scheduled', 'available', 'running', 'completed', 'retryable', 'failed',
    'cancelled', 'waiting_external'];
  c_held constant text[] := ARRAY['scheduled', 'available', 'running', 'retryable', 'waiting_external'];
  r awa.insert_job_row;
  o jsonb := coalesce(p_options, '{}'::jsonb);
  v jsonb;
  u jsonb;
  v_key text;
  v_ms numeric;
  v_delay_ms numeric;
  v_period_ms numeric;
  v_by_queue boolean := false;
  v_by_args boolean := true;
  v_missing text[];
  v_tag jsonb;
BEGIN
  IF p_kind IS NULL OR p_kind !~ '^[A-Za-z0-9_.:/-]{1,128}$' THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'kind', awa.insert_show(to_jsonb(p_kind)),
      '1..128 characters of letters, digits, "_", ".", ":", "/" or "-"');
  END IF;
  r.kind := p_kind;

  IF p_args IS NULL THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'args', 'NULL', 'a JSON value (usually an object)',
      'Pass ''{}''::jsonb for a job without args.');
  END IF;
  PERFORM awa.insert_check_payload(p_where, p_kind, 'args', p_args, 1048576);
  r.args := p_args;

  IF jsonb_typeof(o) <> 'object' THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'options', awa.insert_show(o), 'a JSON object of insert options');
  END IF;
  FOR v_key IN SELECT k FROM jsonb_object_keys(o) k ORDER BY k LOOP
    IF NOT v_key = ANY (c_options) THEN
      PERFORM awa.insert_refuse(p_where, p_kind, v_key, 'an unknown option',
        'one of ' || array_to_string(c_options, ', '),
        coalesce((SELECT format('Did you mean %s?', n) FROM unnest(c_options) n
                   WHERE replace(n, '_', '') = lower(regexp_replace(v_key, '[^A-Za-z]', '', 'g')) LIMIT 1),
                 'Remove it; see docs/sql-api.md for every option.'));
    END IF;
  END LOOP;
  -- JSON null means "not given", as an absent key does (handy for nullable columns in triggers).
  o := (SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}') FROM jsonb_each(o) x WHERE jsonb_typeof(x.value) <> 'null');

  v := o -> 'queue';
  IF v IS NULL THEN
    r.queue := 'default';
  ELSIF jsonb_typeof(v) <> 'string' OR (v #>> '{}') !~ '^[A-Za-z0-9_.:-]{1,128}$' THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'queue', awa.insert_show(v),
      '1..128 characters of letters, digits, "_", ".", ":" or "-"');
  ELSE
    r.queue := v #>> '{}';
  END IF;

  v := o -> 'priority';
  IF v IS NULL THEN
    r.priority := 2;
  ELSIF (CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::numeric NOT IN (1, 2, 3, 4) ELSE true END) THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'priority', awa.insert_show(v),
      'an integer from 1 (highest) to 4 (lowest)');
  ELSE
    r.priority := (v #>> '{}')::numeric;
  END IF;

  v := o -> 'max_attempts';
  IF v IS NULL THEN
    r.max_attempts := 25;
  ELSIF (CASE WHEN jsonb_typeof(v) = 'number'
             THEN (v #>> '{}')::numeric NOT BETWEEN 1 AND 1000 OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
             ELSE true END) THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'max_attempts', awa.insert_show(v), 'an integer from 1 to 1000');
  ELSE
    r.max_attempts := (v #>> '{}')::numeric;
  END IF;

  v := o -> 'run_at';
  IF v IS NOT NULL THEN
    IF jsonb_typeof(v) = 'string' THEN
      BEGIN
        r.run_at := (v #>> '{}')::timestamptz;
      EXCEPTION WHEN data_exception THEN
        r.run_at := NULL;
      END;
    END IF;
    IF r.run_at IS NULL OR NOT isfinite(r.run_at) THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'run_at', awa.insert_show(v),
        'a timestamp as a JSON string, for example "2030-01-01T09:00:00Z"',
        'Build it with to_jsonb(some_timestamptz) or jsonb_build_object(''run_at'', now() + interval ''1 hour'').');
    END IF;
  END IF;

  v := o -> 'delay';
  IF v IS NOT NULL THEN
    v_delay_ms := awa.insert_duration_ms(v);
    IF v_delay_ms IS NULL OR v_delay_ms < 0 THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'delay', awa.insert_show(v),
        'a non-negative duration: milliseconds as a number, or an interval string such as ''5 minutes''');
    END IF;
    IF r.run_at IS NOT NULL THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'delay', awa.insert_show(v), 'either run_at or delay, not both');
    END IF;
    BEGIN
      r.run_at := now() + round(v_delay_ms) * interval '1 millisecond';
    EXCEPTION WHEN data_exception THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'delay', awa.insert_show(v),
        'a delay that ends within the range of a timestamp');
    END;
  END IF;
  r.run_at := coalesce(r.run_at, now());

  v := o -> 'timeout';
  IF v IS NOT NULL THEN
    v_ms := awa.insert_duration_ms(v);
    IF v_ms IS NULL OR v_ms < 1 OR v_ms > 2147483647 THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'timeout', awa.insert_show(v),
        'a duration from 1 ms to 2147483647 ms: milliseconds as a number, or an interval string such as ''30 seconds''');
    END IF;
    r.timeout_ms := ceil(v_ms);
  END IF;

  v := o -> 'tags';
  r.tags := '{}';
  IF v IS NOT NULL THEN
    IF (CASE WHEN jsonb_typeof(v) = 'array' THEN jsonb_array_length(v) > 20 ELSE true END) THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'tags', awa.insert_show(v), 'an array of at most 20 tags');
    END IF;
    FOR v_tag IN SELECT t FROM jsonb_array_elements(v) t LOOP
      -- A tag's length counts UTF-16 code units, as JavaScript's String#length does.
      IF (CASE WHEN jsonb_typeof(v_tag) = 'string'
              THEN (v_tag #>> '{}') = '' OR char_length(v_tag #>> '{}')
                     + char_length(regexp_replace(v_tag #>> '{}', '[^\U00010000-\U0010FFFF]', '', 'g')) > 255
              ELSE true END) THEN
        PERFORM awa.insert_refuse(p_where, p_kind, 'tags', awa.insert_show(v_tag), 'each tag a string of 1..255 characters');
      END IF;
    END LOOP;
    r.tags := ARRAY(SELECT jsonb_array_elements_text(v));
  END IF;

  v := o -> 'metadata';
  IF v IS NULL THEN
    r.metadata := '{}';
  ELSIF jsonb_typeof(v) <> 'object' THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'metadata', awa.insert_show(v), 'a JSON object');
  ELSE
    PERFORM awa.insert_check_payload(p_where, p_kind, 'metadata', v, 65536);
    r.metadata := v;
  END IF;

  u := o -> 'unique';
  IF u IS NULL OR u = 'false'::jsonb THEN
    RETURN r;
  END IF;
  IF u = 'true'::jsonb THEN
    u := '{}';
  ELSIF jsonb_typeof(u) <> 'object' THEN
    PERFORM awa.insert_refuse(p_where, p_kind, 'unique', awa.insert_show(u), 'true, false or an object');
  END IF;
  FOR v_key IN SELECT k FROM jsonb_object_keys(u) k ORDER BY k LOOP
    IF NOT v_key = ANY (c_unique) THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'unique.' || v_key, 'an unknown unique option',
        'one of ' || array_to_string(c_unique, ', '),
        coalesce((SELECT format('Did you mean unique.%s?', n) FROM unnest(c_unique) n
                   WHERE replace(n, '_', '') = lower(regexp_replace(v_key, '[^A-Za-z]', '', 'g')) LIMIT 1),
                 'Remove it; see docs/sql-api.md for the unique options.'));
    END IF;
  END LOOP;
  u := (SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}') FROM jsonb_each(u) x WHERE jsonb_typeof(x.value) <> 'null');
  v := u -> 'by_queue';
  IF v IS NOT NULL THEN
    IF jsonb_typeof(v) <> 'boolean' THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'unique.by_queue', awa.insert_show(v), 'true or false');
    END IF;
    v_by_queue := v::text::boolean;
  END IF;
  v := u -> 'by_args';
  IF v IS NOT NULL THEN
    IF jsonb_typeof(v) <> 'boolean' THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'unique.by_args', awa.insert_show(v), 'true or false');
    END IF;
    v_by_args := v::text::boolean;
  END IF;
  v := u -> 'by_period';
  IF v IS NOT NULL THEN
    v_ms := awa.insert_duration_ms(v);
    IF v_ms IS NULL OR v_ms < 1 THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'unique.by_period', awa.insert_show(v),
        'a duration of at least 1 ms: milliseconds as a number, or an interval string such as ''1 hour''');
    END IF;
    v_period_ms := round(v_ms);
  END IF;
  v := u -> 'states';
  IF v IS NULL THEN
    r.unique_states := ARRAY['scheduled', 'available', 'running', 'completed', 'retryable', 'waiting_external'];
  ELSE
    IF (CASE WHEN jsonb_typeof(v) = 'array'
            THEN EXISTS (SELECT 1 FROM jsonb_array_elements(v) s
                          WHERE CASE WHEN jsonb_typeof(s) = 'string' THEN NOT (s #>> '{}') = ANY (c_states) ELSE true END)
            ELSE true END) THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'unique.states', awa.insert_show(v),
        'an array of job states (' || array_to_string(c_states, ', ') || ')');
    END IF;
    -- Each state once, in the order first given.
    r.unique_states := ARRAY(SELECT s.t FROM jsonb_array_elements_text(v) WITH ORDINALITY AS s(t, o)
                             GROUP BY s.t ORDER BY min(s.o));
    v_missing := ARRAY(SELECT h FROM unnest(c_held) h WHERE NOT h = ANY (r.unique_states));
    IF cardinality(v_missing) > 0 THEN
      PERFORM awa.insert_refuse(p_where, p_kind, 'unique.states', awa.insert_show(v),
        format('every state a job moves through on its own (%s); missing %s', array_to_string(c_held, ', '),
          array_to_string(v_missing, ', ')),
        'Add completed, failed or cancelled to also refuse duplicates of finished jobs.');
    END IF;
  END IF;
  r.unique_key := awa.unique_key(r.kind, r.queue, r.args, r.run_at, v_by_queue, v_by_args, v_period_ms);
  RETURN r;
END
$fn$;

-- The storage state an insert routes by, read under a KEY SHARE lock on the state row: a storage transition
-- (which locks the row FOR UPDATE) waits until this transaction ends, so no job lands in an engine the state
-- has just left. SECURITY DEFINER so a producer-only role (INSERT and SELECT) can take the lock.
CREATE FUNCTION awa.storage_state_for_insert(OUT storage_state text, OUT queue_storage_schema text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT s.storage_state, s.queue_storage_schema FROM awa.runtime_state s FOR KEY SHARE
$fn$;

-- Inserts validated jobs into the engine the storage state names, one result per row in order. canonical and
-- prepared: awa.jobs (its statement trigger sends NOTIFY awa_jobs_available). mixed and active: the state's
-- queue-storage schema through its enqueue function (which notifies), after taking the unique keys' locks;
-- a unique key held by a canonical job is a conflict naming that job. A key whose holder let go meanwhile is
-- tried again.
CREATE FUNCTION awa.insert_job_rows(p_rows awa.insert_job_row[])
RETURNS TABLE (ord integer, outcome text, id bigint, state text, run_at timestamptz, engine text,
  existing_id bigint, existing_state text, unique_key text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_state text;
  v_schema text;
  r awa.insert_job_row;
  v_id bigint;
  v_job_state text;
  v_run_at timestamptz;
  v_n integer := coalesce(cardinality(p_rows), 0);
  v_pending integer[];
  v_again integer[];
  e record;
  v_kinds text[];
  v_queues text[];
  v_args text[];
  v_priorities smallint[];
  v_max_attempts integer[];
  v_run_ats timestamptz[];
  v_timeouts integer[];
  v_tags text[];
  v_metadata text[];
  v_keys text[];
  v_states text[];
BEGIN
  SELECT s.storage_state, coalesce(s.queue_storage_schema, 'awa') INTO v_state, v_schema
    FROM awa.storage_state_for_insert() s;

  IF v_state IN ('canonical', 'prepared') THEN
    FOR i IN 1 .. v_n LOOP
      r := p_rows[i];
      FOR v_round IN 1 .. 5 LOOP
        INSERT INTO awa.jobs AS j (kind, queue, args, state, priority, max_attempts, run_at, attempt_timeout_ms,
          tags, metadata, unique_key, unique_states)
        VALUES (r.kind, r.queue, r.args,
          CASE WHEN r.run_at > clock_timestamp() THEN 'scheduled'::awa.job_state ELSE 'available'::awa.job_state END,
          r.priority, r.max_attempts, r.run_at, r.timeout_ms, r.tags, r.metadata, decode(r.unique_key, 'hex'),
          r.unique_states::awa.job_state[])
        ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state = ANY (unique_states) DO NOTHING
        RETURNING j.id, j.state::text, j.run_at INTO v_id, v_job_state, v_run_at;
        IF v_id IS NOT NULL THEN
          ord := i; outcome := 'inserted'; id := v_id; state := v_job_state; run_at := v_run_at;
          engine := 'canonical'; existing_id := NULL; existing_state := NULL; unique_key := r.unique_key;
          RETURN NEXT;
          EXIT;
        END IF;
        SELECT h.id, h.state::text INTO v_id, v_job_state FROM awa.jobs h
         WHERE h.unique_key = decode(r.unique_key, 'hex') AND h.state = ANY (h.unique_states);
        IF v_id IS NOT NULL THEN
          ord := i; outcome := 'unique_conflict'; id := NULL; state := NULL; run_at := NULL;
          engine := 'canonical'; existing_id := v_id; existing_state := v_job_state; unique_key := r.unique_key;
          RETURN NEXT;
          EXIT;
        END IF;
        IF v_round = 5 THEN
          RAISE EXCEPTION USING ERRCODE = '40001',
            MESSAGE = 'awa.insert_job: a unique key kept changing holders while inserting; nothing was inserted',
            HINT = 'Retry the transaction.';
        END IF;
      END LOOP;
    END LOOP;
    RETURN;
  END IF;

  -- Queue storage (mixed or active).
  v_pending := ARRAY(SELECT generate_series(1, v_n));
  IF EXISTS (SELECT 1 FROM unnest(p_rows) r WHERE r.unique_key IS NOT NULL) THEN
    -- As the runtime does: lock the keys (the lock every path that gives a key a holder in either engine
    -- takes), then look at awa.jobs in a fresh statement, then enqueue, all in this transaction. Keys still
    -- held by canonical jobs (live ones while mixed, kept history once active) are conflicts naming them.
    EXECUTE format('SELECT %I.lock_unique_keys($1)', v_schema)
      USING ARRAY(SELECT decode(r.unique_key, 'hex') FROM unnest(p_rows) r WHERE r.unique_key IS NOT NULL);
    FOR e IN
      SELECT o.i, h.id, h.state::text AS hstate, (p_rows[o.i]).unique_key AS k
      FROM generate_series(1, v_n) AS o(i)
      JOIN awa.jobs h ON h.unique_key = decode((p_rows[o.i]).unique_key, 'hex') AND h.state = ANY (h.unique_states)
      WHERE (p_rows[o.i]).unique_key IS NOT NULL
      ORDER BY o.i
    LOOP
      ord := e.i; outcome := 'unique_conflict'; id := NULL; state := NULL; run_at := NULL; engine := 'canonical';
      existing_id := e.id; existing_state := e.hstate; unique_key := e.k;
      RETURN NEXT;
      v_pending := array_remove(v_pending, e.i);
    END LOOP;
  END IF;
  FOR v_round IN 1 .. 5 LOOP
    EXIT WHEN cardinality(v_pending) = 0;
    v_again := '{}';
    -- The pending rows as the enqueue function's parallel arrays, in pending order.
    SELECT array_agg(r.kind ORDER BY x.n), array_agg(r.queue ORDER BY x.n), array_agg(r.args::text ORDER BY x.n),
      array_agg(r.priority ORDER BY x.n), array_agg(r.max_attempts ORDER BY x.n), array_agg(r.run_at ORDER BY x.n),
      array_agg(r.timeout_ms ORDER BY x.n),
      array_agg(CASE WHEN cardinality(r.tags) = 0 THEN NULL ELSE to_jsonb(r.tags)::text END ORDER BY x.n),
      array_agg(CASE WHEN r.metadata = '{}'::jsonb THEN NULL ELSE r.metadata::text END ORDER BY x.n),
      array_agg(r.unique_key ORDER BY x.n),
      array_agg(CASE WHEN r.unique_states IS NULL THEN NULL ELSE '{' || array_to_string(r.unique_states, ',') || '}' END
                ORDER BY x.n)
    INTO v_kinds, v_queues, v_args, v_priorities, v_max_attempts, v_run_ats, v_timeouts, v_tags, v_metadata, v_keys,
      v_states
    FROM unnest(v_pending) WITH ORDINALITY AS x(i, n)
    CROSS JOIN LATERAL (SELECT (p_rows[x.i]).*) r;
    FOR e IN EXECUTE format(
      'SELECT e.ord, e.id, e.state, e.run_at, e.existing_id, e.existing_state
         FROM %I.enqueue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) e ORDER BY e.ord', v_schema)
      USING v_kinds, v_queues, v_args, v_priorities, v_max_attempts, v_run_ats,
        array_fill(NULL::bigint, ARRAY[cardinality(v_pending)]), v_timeouts, v_tags, v_metadata, v_keys, v_states
    LOOP
      IF e.id IS NOT NULL THEN
        ord := v_pending[e.ord]; outcome := 'inserted'; id := e.id; state := e.state; run_at := e.run_at;
        engine := 'queue_storage'; existing_id := NULL; existing_state := NULL;
        unique_key := (p_rows[v_pending[e.ord]]).unique_key;
        RETURN NEXT;
      ELSIF e.existing_id IS NOT NULL AND e.existing_state IS NOT NULL THEN
        ord := v_pending[e.ord]; outcome := 'unique_conflict'; id := NULL; state := NULL; run_at := NULL;
        engine := 'queue_storage'; existing_id := e.existing_id; existing_state := e.existing_state;
        unique_key := (p_rows[v_pending[e.ord]]).unique_key;
        RETURN NEXT;
      ELSE
        v_again := v_again || v_pending[e.ord];
      END IF;
    END LOOP;
    v_pending := v_again;
  END LOOP;
  IF cardinality(v_pending) > 0 THEN
    RAISE EXCEPTION USING ERRCODE = '40001',
      MESSAGE = 'awa.insert_job: a unique key kept changing holders while inserting; nothing was inserted',
      HINT = 'Retry the transaction.';
  END IF;
END
$fn$;

-- The result of one insert, as @awa/runtime's InsertResult: outcome 'inserted' (id, state, run_at) or
-- 'unique_conflict' (existing_id, existing_state of the job holding the key); engine says which engine
-- took the job or holds the key; unique_key is the key as hex (NULL for a job that is not unique).
CREATE TYPE awa.insert_job_result AS (
  outcome text,
  id bigint,
  state text,
  run_at timestamptz,
  engine text,
  existing_id bigint,
  existing_state text,
  unique_key text
);

-- Enqueues one job from SQL. Options (a JSON object, every key optional; JSON null = not given): queue,
-- priority (1..4), max_attempts (1..1000), run_at (timestamp string) or delay (ms or interval string), timeout
-- (ms or interval string), tags (array of strings), metadata (object), unique (true or {by_queue, by_args,
-- by_period, states}). Bad input raises SQLSTATE 22023 (54000 for an oversized payload) and inserts nothing.
CREATE FUNCTION awa.insert_job(kind text, args jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
RETURNS awa.insert_job_result LANGUAGE plpgsql AS $fn$
DECLARE
  r awa.insert_job_result;
BEGIN
  SELECT x.outcome, x.id, x.state, x.run_at, x.engine, x.existing_id, x.existing_state, x.unique_key INTO r
    FROM awa.insert_job_rows(ARRAY[awa.insert_job_resolve('awa.insert_job', kind, args, options)]) x;
  RETURN r;
END
$fn$;

COMMENT ON FUNCTION awa.insert_job(text, jsonb, jsonb) IS
  'Enqueues one job into the active engine (see docs/sql-api.md): returns outcome, id, state, run_at, engine, existing_id, existing_state, unique_key.';

-- Enqueues many jobs in one call: p_jobs is a JSON array of {kind, args?, options?}. Every job is validated
-- before any is inserted; one result row per input, in input order (ord counts from 1).
CREATE FUNCTION awa.insert_jobs(jobs jsonb)
RETURNS TABLE (ord integer, outcome text, id bigint, state text, run_at timestamptz, engine text,
  existing_id bigint, existing_state text, unique_key text)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_rows awa.insert_job_row[] := '{}';
  v_job jsonb;
  v_i integer := 0;
  v_where text;
  v_key text;
BEGIN
  IF jobs IS NULL OR jsonb_typeof(jobs) <> 'array' THEN
    PERFORM awa.insert_refuse('awa.insert_jobs', NULL, 'jobs', awa.insert_show(jobs),
      'a JSON array of {"kind": ..., "args": ..., "options": ...} objects');
  END IF;
  FOR v_job IN SELECT j FROM jsonb_array_elements(jobs) WITH ORDINALITY AS x(j, n) ORDER BY x.n LOOP
    v_i := v_i + 1;
    v_where := format('awa.insert_jobs jobs[%s]', v_i);
    IF jsonb_typeof(v_job) <> 'object' THEN
      PERFORM awa.insert_refuse(v_where, NULL, 'job', awa.insert_show(v_job),
        'an object {"kind": ..., "args": ..., "options": ...}');
    END IF;
    FOR v_key IN SELECT k FROM jsonb_object_keys(v_job) k ORDER BY k LOOP
      IF NOT v_key = ANY (ARRAY['kind', 'args', 'options']) THEN
        PERFORM awa.insert_refuse(v_where, v_job ->> 'kind', 'job', format('an unknown key %s', to_json(v_key)),
          'only the keys kind, args and options', 'Put insert options such as queue or priority inside "options".');
      END IF;
    END LOOP;
    IF jsonb_typeof(v_job -> 'kind') IS DISTINCT FROM 'string' THEN
      PERFORM awa.insert_refuse(v_where, NULL, 'kind', awa.insert_show(v_job -> 'kind'), 'the job kind as a string');
    END IF;
    v_rows := v_rows || awa.insert_job_resolve(v_where, v_job ->> 'kind', coalesce(v_job -> 'args', '{}'),
      coalesce(v_job -> 'options', '{}'));
  END LOOP;
  RETURN QUERY SELECT x.ord, x.outcome, x.id, x.state, x.run_at, x.engine, x.existing_id, x.existing_state, x.unique_key
    FROM awa.insert_job_rows(v_rows) x ORDER BY x.ord;
END
$fn$;

COMMENT ON FUNCTION awa.insert_jobs(jsonb) IS
  'Enqueues a JSON array of {kind, args, options} into the active engine (see docs/sql-api.md): one result row per job, in order.';
