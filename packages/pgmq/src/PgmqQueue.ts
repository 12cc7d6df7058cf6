import { Result, Schema } from "effect"
import { InvalidPgmqOptions } from "./PgmqErrors.js"

/** The schema of a queue's messages: any codec without service requirements whose encoded side is plain JSON. */
export type PgmqMessageSchema<A, I = A> = Schema.Codec<A, I, never, never>

/** The longest queue name pgmq accepts (its table names `q_<name>` / `a_<name>` must fit Postgres' 63 bytes). */
export const maxPgmqQueueNameLength = 47

/**
 * A typed pgmq queue: its name on the pgmq database and the Effect Schema of its messages, validated when a
 * message is sent and again when it is read.
 */
export interface PgmqQueue<A = unknown, I = unknown> {
  /** The pgmq queue name, as given to `pgmq.create`. */
  readonly name: string
  /** The message schema. */
  readonly message: PgmqMessageSchema<A, I>
  /** Encodes a message to its JSON form, or returns the schema's issue. */
  readonly encode: (message: A) => Result.Result<unknown, string>
  /** Decodes a stored message (parsed JSON), or returns the schema's issue. */
  readonly decode: (json: unknown) => Result.Result<A, string>
}

/** The message type of a queue definition. */
export type PgmqMessageOf<Q> = Q extends PgmqQueue<infer A, unknown> ? A : never

/** Any queue definition, whatever its message type. */
// biome-ignore lint/suspicious/noExplicitAny: a queue's message type is contravariant in encode.
export type AnyPgmqQueue = PgmqQueue<any, any>

/**
 * Checks a pgmq queue name before it reaches the database: a non-empty string of at most 47 characters
 * without NUL. pgmq's own rules (letters, digits, `_` and `-`, any case) are checked by the database.
 */
export const validatePgmqQueueName = (name: unknown): string | InvalidPgmqOptions => {
  if (typeof name !== "string" || name.length === 0) {
    return new InvalidPgmqOptions({
      option: "queue",
      value: JSON.stringify(name),
      expected: "a non-empty queue name",
    })
  }
  if (name.length > maxPgmqQueueNameLength || name.includes("\0")) {
    return new InvalidPgmqOptions({
      option: "queue",
      value: JSON.stringify(name.slice(0, 60)),
      expected: `a pgmq queue name of at most ${maxPgmqQueueNameLength} characters`,
    })
  }
  return name
}

/** Options of `definePgmqQueue`. */
export interface DefinePgmqQueueOptions<A, I> {
  /** The pgmq queue name. */
  readonly name: string
  /** The message schema, for example `Schema.Struct({ orderId: Schema.String })`. */
  readonly message: PgmqMessageSchema<A, I>
}

/**
 * Defines a typed pgmq queue. Throws `InvalidPgmqOptions` for an unusable name, since a bad definition is a
 * programming error. Use `Schema.Unknown` (or `Schema.Json`) for an untyped queue.
 *
 * @example
 * const Orders = definePgmqQueue({ name: "orders", message: Schema.Struct({ id: Schema.String }) })
 */
export const definePgmqQueue = <A, I>(options: DefinePgmqQueueOptions<A, I>): PgmqQueue<A, I> => {
  const name = validatePgmqQueueName(options.name)
  if (typeof name !== "string") throw name
  const encode = Schema.encodeUnknownResult(options.message)
  const decode = Schema.decodeUnknownResult(options.message)
  return {
    name,
    message: options.message,
    encode: (message) => Result.mapError(encode(message), (error) => error.message),
    decode: (json) => Result.mapError(decode(json), (error) => error.message),
  }
}
