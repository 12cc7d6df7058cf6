// The pgmq client's statements: calls of pgmq's public functions and awa's pgmq helpers, parameterized.
// Every call casts its arguments so the right overload is chosen on any pgmq provider.
import { type SqlStatement, statement } from "@awa/runtime/PgExecutor"

/** A statement of this module. */
export type Statement = SqlStatement

/** The columns of a message row, ids as text (bigint does not fit a JS number). */
const messageColumns = "m.msg_id::text AS msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers"

/** Sends one message: $1 queue, $2 message json, $3 headers json or null, $4 delay seconds. */
export const send = statement(
  "pgmq_send",
  "SELECT s.id::text AS msg_id FROM pgmq.send($1::text, $2::jsonb, $3::jsonb, $4::integer) AS s(id)",
)

/** Sends one message and notifies awa's channels: $1 queue, $2 message, $3 headers or null, $4 delay seconds. */
export const sendNotify = statement(
  "pgmq_send_notify",
  "SELECT awa_pgmq.send_notify($1::text, $2::jsonb, $3::jsonb, $4::integer)::text AS msg_id",
)

/** Sends messages: $1 queue, $2 messages jsonb[], $3 headers jsonb[] or null, $4 delay seconds; ids in input order. */
export const sendBatch = statement(
  "pgmq_send_batch",
  `SELECT s.id::text AS msg_id
     FROM pgmq.send_batch($1::text, $2::jsonb[], $3::jsonb[], $4::integer) WITH ORDINALITY AS s(id, ord)
    ORDER BY s.ord`,
  { prepared: false },
)

/** Sends messages with one notification for the batch (same parameters as `sendBatch`). */
export const sendBatchNotify = statement(
  "pgmq_send_batch_notify",
  `SELECT s.id::text AS msg_id
     FROM awa_pgmq.send_batch_notify($1::text, $2::jsonb[], $3::jsonb[], $4::integer) WITH ORDINALITY AS s(id, ord)
    ORDER BY s.ord`,
  { prepared: false },
)

/** Reads up to $3 visible messages of queue $1, hiding them for $2 seconds. */
export const read = statement(
  "pgmq_read",
  `SELECT ${messageColumns} FROM pgmq.read($1::text, $2::integer, $3::integer) AS m`,
)

/** Reads and deletes the oldest visible message of queue $1. */
export const pop = statement("pgmq_pop", `SELECT ${messageColumns} FROM pgmq.pop($1::text) AS m`)

/** Archives messages $2 (bigint[]) of queue $1; returns the ids archived. */
export const archive = statement(
  "pgmq_archive",
  "SELECT a.id::text AS msg_id FROM pgmq.archive($1::text, $2::bigint[]) AS a(id)",
)

/** Deletes messages $2 (bigint[]) of queue $1; returns the ids deleted. */
export const deleteMessages = statement(
  "pgmq_delete",
  "SELECT d.id::text AS msg_id FROM pgmq.delete($1::text, $2::bigint[]) AS d(id)",
)

/** Makes message $2 of queue $1 visible $3 seconds from now; returns it (no row when it does not exist). */
export const setVt = statement(
  "pgmq_set_vt",
  `SELECT ${messageColumns} FROM pgmq.set_vt($1::text, $2::bigint, $3::integer) AS m`,
)

/** The metrics of queue $1. */
export const metrics = statement("pgmq_metrics", "SELECT m.* FROM pgmq.metrics($1::text) AS m")

/** The metrics of every queue. */
export const metricsAll = statement(
  "pgmq_metrics_all",
  "SELECT m.* FROM pgmq.metrics_all() AS m ORDER BY m.queue_name",
)

/** Creates queue $1 (nothing happens when it exists). */
export const createQueue = statement("pgmq_create", "SELECT pgmq.create($1::text)")

/** Every queue, by name. */
export const listQueues = statement(
  "pgmq_list_queues",
  `SELECT q.queue_name::text AS queue_name, q.is_partitioned, q.is_unlogged, q.created_at
     FROM pgmq.list_queues() AS q ORDER BY q.queue_name`,
)

/** Whether queue $1 exists. */
export const queueExists = statement(
  "pgmq_queue_exists",
  "SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = $1::text) AS exists",
)

/** Deletes every message of queue $1; returns how many. */
export const purgeQueue = statement("pgmq_purge", "SELECT pgmq.purge_queue($1::text)::text AS purged")

/** Drops queue $1 with its archive; returns whether it existed. */
export const dropQueue = statement("pgmq_drop", "SELECT pgmq.drop_queue($1::text) AS dropped")
