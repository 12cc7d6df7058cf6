import { Schema } from "effect"

/** A job definition that cannot be used (for example an empty or over-long kind). */
export class InvalidJobDefinition extends Schema.TaggedError<InvalidJobDefinition>()("InvalidJobDefinition", {
  kind: Schema.String,
  reason: Schema.String,
  /** What to do next, when it is not fixing the definition itself (default: fix what defineJob was given). */
  fix: Schema.optional(Schema.String),
}) {
  override get message(): string {
    return `Job definition "${this.kind}" is invalid: ${this.reason}. ${this.fix ?? "Fix the definition passed to defineJob."}`
  }
}

/**
 * Job args that do not match the definition's schema. At insert time nothing is inserted; at work time
 * the job is failed without retrying (the same args would fail again).
 */
export class InvalidJobArgs extends Schema.TaggedError<InvalidJobArgs>()("InvalidJobArgs", {
  kind: Schema.String,
  phase: Schema.Literals(["insert", "work"]),
  issue: Schema.String,
}) {
  override get message(): string {
    return this.phase === "insert"
      ? `Args for job kind "${this.kind}" do not match its schema: ${this.issue}. Nothing was inserted; fix the args (or the schema) and insert again.`
      : `Stored args for job kind "${this.kind}" no longer match its schema: ${this.issue}. The job was failed without retrying; fix the data and retry it, or make the schema accept the old shape.`
  }
}

/** An insert option (queue, priority, maxAttempts, runAt, delay, timeout, tags, metadata, unique) out of range. */
export class InvalidInsertOptions extends Schema.TaggedError<InvalidInsertOptions>()("InvalidInsertOptions", {
  kind: Schema.String,
  option: Schema.String,
  value: Schema.String,
  expected: Schema.String,
}) {
  override get message(): string {
    return `Invalid insert option \`${this.option}\` for job kind "${this.kind}": got ${this.value}, expected ${this.expected}. Nothing was inserted; fix the option and insert again.`
  }
}

/** Args or metadata that cannot be stored as JSON without losing data (bigint, function, cycle, Date, NaN...). */
export class JobPayloadNotSerializable extends Schema.TaggedError<JobPayloadNotSerializable>()(
  "JobPayloadNotSerializable",
  {
    kind: Schema.String,
    field: Schema.Literals(["args", "metadata"]),
    path: Schema.String,
    reason: Schema.String,
  },
) {
  override get message(): string {
    return `Job kind "${this.kind}": ${this.field} at ${this.path} is not JSON-serializable (${this.reason}). Nothing was inserted; pass plain JSON values, or give the args schema a codec that encodes this value (for example Schema.DateFromString for dates).`
  }
}

/** Args or metadata larger than the limit for one job. */
export class JobPayloadTooLarge extends Schema.TaggedError<JobPayloadTooLarge>()("JobPayloadTooLarge", {
  kind: Schema.String,
  field: Schema.Literals(["args", "metadata"]),
  bytes: Schema.Number,
  limit: Schema.Number,
}) {
  override get message(): string {
    return `Job kind "${this.kind}": ${this.field} is ${this.bytes} bytes of JSON, over the ${this.limit}-byte limit. Nothing was inserted; store large data elsewhere and pass a reference in the job.`
  }
}

/** Any error an insert can report before reaching the database. */
export type InsertValidationError =
  | InvalidJobArgs
  | InvalidInsertOptions
  | JobPayloadNotSerializable
  | JobPayloadTooLarge

/**
 * A claimed job whose kind no handler in this worker knows. The job is retried (another worker may know it),
 * unless this was its last attempt (`lastAttempt`), in which case it failed.
 */
export class UnknownJobKind extends Schema.TaggedError<UnknownJobKind>()("UnknownJobKind", {
  kind: Schema.String,
  known: Schema.Array(Schema.String),
  lastAttempt: Schema.optional(Schema.Boolean),
}) {
  override get message(): string {
    const known = this.known.length === 0 ? "none" : this.known.map((k) => `"${k}"`).join(", ")
    return this.lastAttempt === true
      ? `No handler for job kind "${this.kind}" in this worker (known kinds: ${known}). That was the job's last attempt, so it failed; register a handler for the kind, then retry the job.`
      : `No handler for job kind "${this.kind}" in this worker (known kinds: ${known}). The job will be retried; register a handler for it or cancel the job.`
  }
}

/** A job id that is in neither the job table nor the dead-letter queue. */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.String,
}) {
  override get message(): string {
    return `Job ${this.id} does not exist (it may have been deleted by retention). List jobs to find the right id.`
  }
}

/** An operation that the job's current state does not allow (for example retrying a running job). */
export class JobStateConflict extends Schema.TaggedError<JobStateConflict>()("JobStateConflict", {
  id: Schema.String,
  state: Schema.String,
  operation: Schema.String,
  allowed: Schema.Array(Schema.String),
}) {
  override get message(): string {
    return `Cannot ${this.operation} job ${this.id}: it is ${this.state}, and ${this.operation} applies only to jobs that are ${this.allowed.join(", ")}.`
  }
}

/** A unique key held by another job, met when a retried job (or a DLQ retry) would take it back. */
export class UniqueKeyHeld extends Schema.TaggedError<UniqueKeyHeld>()("UniqueKeyHeld", {
  id: Schema.String,
  existingJobId: Schema.NullOr(Schema.String),
}) {
  override get message(): string {
    const holder = this.existingJobId === null ? "another job" : `job ${this.existingJobId}`
    return `Job ${this.id} cannot return to the queue: its unique key is held by ${holder}. Cancel or finish that job first.`
  }
}

/** A bulk operation (such as purging the DLQ) attempted without any filter. */
export class FilterRequired extends Schema.TaggedError<FilterRequired>()("FilterRequired", {
  operation: Schema.String,
  filters: Schema.Array(Schema.String),
}) {
  override get message(): string {
    return `Refusing to ${this.operation} without a filter. Pass one of ${this.filters.join(", ")} (use \`all: true\` to really act on everything).`
  }
}

/**
 * An argument of an admin operation (a job id, a queue name, a page limit or cursor, a duration) that is not
 * valid. Raised before anything reaches the database.
 */
export class InvalidAdminArgument extends Schema.TaggedError<InvalidAdminArgument>()("InvalidAdminArgument", {
  operation: Schema.String,
  argument: Schema.String,
  value: Schema.String,
  expected: Schema.String,
}) {
  override get message(): string {
    return `Cannot ${this.operation}: ${this.argument} is ${this.value}, expected ${this.expected}. Nothing was changed.`
  }
}

/**
 * An attempt's deadline (its per-attempt timeout) passed before the handler finished. Recorded on the job;
 * `lastAttempt` says the job failed rather than being retried.
 */
export class JobDeadlineExceeded extends Schema.TaggedError<JobDeadlineExceeded>()("JobDeadlineExceeded", {
  kind: Schema.String,
  timeoutMs: Schema.Number,
  lastAttempt: Schema.optional(Schema.Boolean),
}) {
  override get message(): string {
    const then =
      this.lastAttempt === true ? "that was its last attempt, so the job failed" : "the job will be retried"
    return `Job kind "${this.kind}" ran past its ${this.timeoutMs} ms attempt deadline; the attempt was abandoned and ${then}. Raise the job's \`timeout\` or make the handler honour ctx.signal.`
  }
}

/**
 * A worker given no handlers: it would claim jobs it cannot run. Pass handlers, or `allowNoHandlers: true`
 * for a worker that only takes part in maintenance (it then claims nothing).
 */
export class NoJobHandlers extends Schema.TaggedError<NoJobHandlers>()("NoJobHandlers", {}) {
  override get message(): string {
    return "The worker was given no handlers, so every job it claimed would fail as an unknown kind. Pass handlers made with handle(definition, fn), or `allowNoHandlers: true` for a worker that only runs maintenance (it then claims no jobs)."
  }
}
