// A job id looked up in the wrong place: `awa job ...` with the id of a dead-lettered job, or `awa dlq ...`
// with the id of a live job. "Does not exist" would send the operator hunting; these errors say where the job
// is and which command reaches it (exit 7, like any id that is not found).
import type { Admin } from "@awa/runtime/Admin"
import type { PgPool } from "@awa/runtime/PgExecutor"
import { Data } from "effect"

/** `awa job get|retry|cancel ID` where ID is in the dead-letter queue, not the job table. */
export class JobIsDeadLettered extends Data.TaggedError("JobIsDeadLettered")<{
  readonly id: string
  readonly queue: string
  readonly kind: string
}> {
  override get message(): string {
    return `Job ${this.id} is not a live job: it is in the dead-letter queue (queue ${this.queue}, kind ${this.kind}). Use \`awa dlq get ${this.id}\` to see it, or \`awa dlq retry ${this.id}\` to run it again.`
  }
}

/** `awa dlq get|retry|purge ID` where ID is a job in the job table, not in the dead-letter queue. */
export class JobNotDeadLettered extends Data.TaggedError("JobNotDeadLettered")<{
  readonly id: string
  readonly state: string
  readonly queue: string
  readonly operation: "get" | "retry" | "purge"
}> {
  override get message(): string {
    const next =
      this.operation === "retry"
        ? `\`awa job retry ${this.id}\` runs it again`
        : `\`awa job get ${this.id}\` shows it`
    return `Job ${this.id} is not in the dead-letter queue: it is a job in state ${this.state} (queue ${this.queue}). ${next}.`
  }
}

const isJobNotFound = (error: unknown): boolean =>
  (error as { _tag?: unknown } | null)?._tag === "JobNotFound"

// Runs `use`; when it fails with JobNotFound and `lookElsewhere` finds the job in the other place, fails with
// the error `misplaced` makes of what was found instead.
const explainNotFound = async <A, F>(
  use: () => Promise<A>,
  lookElsewhere: () => Promise<F>,
  misplaced: (found: F) => Error,
): Promise<A> => {
  try {
    return await use()
  } catch (error) {
    if (!isJobNotFound(error)) throw error
    const found = await lookElsewhere().catch(() => undefined)
    if (found === undefined) throw error
    throw misplaced(found)
  }
}

/**
 * Runs a job-table operation on `id` (looking elsewhere with `admin`, on the same engine); when the job is not there but the DLQ holds it, fails with
 * `JobIsDeadLettered` instead of `JobNotFound`.
 */
export const inJobTable = <A>(admin: Admin, pool: PgPool, id: string, use: () => Promise<A>): Promise<A> =>
  explainNotFound(
    use,
    () => admin.getDlq(pool, id),
    (entry) => new JobIsDeadLettered({ id, queue: entry.queue, kind: entry.kind }),
  )

/**
 * Runs a DLQ operation on `id` (looking elsewhere with `admin`, on the same engine); when the DLQ has no such entry but the job table does, fails with
 * `JobNotDeadLettered` instead of `JobNotFound`.
 */
export const inDeadLetterQueue = <A>(
  admin: Admin,
  pool: PgPool,
  id: string,
  operation: JobNotDeadLettered["operation"],
  use: () => Promise<A>,
): Promise<A> =>
  explainNotFound(
    use,
    () => admin.getJob(pool, id),
    (job) => new JobNotDeadLettered({ id, state: job.state, queue: job.queue, operation }),
  )
