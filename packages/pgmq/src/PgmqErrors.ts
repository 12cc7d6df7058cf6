import { DatabaseError, toDatabaseError } from "@awa/runtime/DatabaseError"
import { Schema } from "effect"

/**
 * A message that does not match its queue's schema. On send nothing was sent. On read the valid
 * messages of the same read are in `valid` (they are invisible until their visibility timeout passes,
 * like any read message) and each invalid one is listed with its raw payload, so nothing is lost.
 */
export class InvalidPgmqMessage extends Schema.TaggedError<InvalidPgmqMessage>()("InvalidPgmqMessage", {
  queue: Schema.String,
  phase: Schema.Literals(["send", "read"]),
  /** One entry per message that failed; `msgId` is null on send (nothing was stored). */
  invalid: Schema.Array(
    Schema.Struct({
      msgId: Schema.NullOr(Schema.String),
      issue: Schema.String,
      raw: Schema.Unknown,
    }),
  ),
  /** On read, the messages that decoded (typed as the queue's messages by `PgmqClient.read`). */
  valid: Schema.Array(Schema.Unknown),
}) {
  override get message(): string {
    const first = this.invalid[0]
    const more = this.invalid.length > 1 ? ` (and ${this.invalid.length - 1} more)` : ""
    return this.phase === "send"
      ? `A message for pgmq queue "${this.queue}" does not match the queue's schema: ${first?.issue}${more}. Nothing was sent; fix the message (or the schema) and send again.`
      : `pgmq queue "${this.queue}" holds message ${first?.msgId} that does not match the queue's schema: ${first?.issue}${more}. The other messages read are in \`valid\`; archive or delete the invalid one (its payload is in \`invalid[].raw\`), or make the schema accept it.`
  }
}

/** Options given to the pgmq client or a consumer that are out of range (nothing was sent or started). */
export class InvalidPgmqOptions extends Schema.TaggedError<InvalidPgmqOptions>()("InvalidPgmqOptions", {
  option: Schema.String,
  value: Schema.String,
  expected: Schema.String,
}) {
  override get message(): string {
    return `Invalid pgmq option \`${this.option}\`: got ${this.value}, expected ${this.expected}. Nothing was done; fix the option and try again.`
  }
}

/** The pgmq queue an operation named does not exist on the pgmq database. */
export class PgmqQueueNotFound extends Schema.TaggedError<PgmqQueueNotFound>()("PgmqQueueNotFound", {
  queue: Schema.String,
  operation: Schema.String,
}) {
  override get message(): string {
    return `pgmq ${this.operation} failed: queue "${this.queue}" does not exist on the pgmq database. Create it (PgmqClient.createQueue, or SELECT pgmq.create('${this.queue}')), or check the name and PGMQ_DATABASE_URL.`
  }
}

/** The pgmq database has no pgmq schema (or lacks awa's helpers): the pgmq set was not applied. */
export class PgmqNotInstalled extends Schema.TaggedError<PgmqNotInstalled>()("PgmqNotInstalled", {
  operation: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `pgmq ${this.operation} failed: ${this.detail}. Install pgmq on the pgmq database with \`awa migrate --with-pgmq\` (PGMQ_DATABASE_URL, else DATABASE_URL).`
  }
}

/** Any error the pgmq client reports. */
export type PgmqError =
  | InvalidPgmqMessage
  | InvalidPgmqOptions
  | PgmqQueueNotFound
  | PgmqNotInstalled
  | DatabaseError

/**
 * Maps a failure of a pgmq statement to the error an operator can act on: a missing queue (pgmq and awa's
 * helpers raise undefined_table naming it), a missing pgmq install, or the runtime's `DatabaseError`.
 */
export const toPgmqError = (operation: string, queue: string | undefined, cause: unknown): unknown => {
  if (
    cause instanceof InvalidPgmqMessage ||
    cause instanceof InvalidPgmqOptions ||
    cause instanceof PgmqQueueNotFound ||
    cause instanceof PgmqNotInstalled
  ) {
    return cause
  }
  const error = cause instanceof DatabaseError ? cause : toDatabaseError(`pgmq ${operation}`, cause)
  if (error.sqlStateClass !== "undefined-object") return error
  if (
    /schema "(pgmq|awa_pgmq)" does not exist|function (pgmq|awa_pgmq)\.\S+ does not exist|relation "pgmq\.meta" does not exist/.test(
      error.detail,
    )
  ) {
    return new PgmqNotInstalled({ operation, detail: error.detail })
  }
  if (queue !== undefined && (error.sqlState === "42P01" || /queue/i.test(error.detail))) {
    return new PgmqQueueNotFound({ queue, operation })
  }
  return error
}
