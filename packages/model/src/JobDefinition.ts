import { Result, Schema } from "effect"
import type { InsertOptions } from "./InsertOptions.js"
import { resolveInsertOptions } from "./InsertOptions.js"
import {
  InvalidJobArgs,
  InvalidJobDefinition,
  type JobPayloadNotSerializable,
  type JobPayloadTooLarge,
} from "./JobErrors.js"
import { serializeJobPayload } from "./JobPayload.js"
import { maxArgsBytes, maxKindLength } from "./Limits.js"

/** The schema of a job's args: any codec without service requirements whose encoded side is plain JSON. */
export type JobArgsSchema<A, I = A> = Schema.Codec<A, I, never, never>

/**
 * A kind of job: its name, the schema of its args (validated when a job is inserted and again when it
 * is worked), and default insert options. Definitions carry no handler, so code that only enqueues
 * needs nothing else.
 */
export interface JobDefinition<Kind extends string = string, A = unknown, I = unknown> {
  /** The job kind stored with every job of this definition. */
  readonly kind: Kind
  /** The args schema. */
  readonly args: JobArgsSchema<A, I>
  /** Default insert options; options given at insert override them field by field. */
  readonly defaults: InsertOptions
  /**
   * Validates args against the schema, encodes them and serializes them to JSON text, or returns the
   * typed error (schema mismatch, not serializable, too large).
   */
  readonly encodeArgs: (args: A) => string | InvalidJobArgs | JobPayloadNotSerializable | JobPayloadTooLarge
  /** Decodes stored args (parsed JSON) at work time, or returns `InvalidJobArgs` with phase "work". */
  readonly decodeArgs: (json: unknown) => Result.Result<A, InvalidJobArgs>
}

/** The args type of a job definition. */
export type JobArgsOf<D> = D extends JobDefinition<string, infer A, unknown> ? A : never

/** Any job definition, whatever its args type. */
// biome-ignore lint/suspicious/noExplicitAny: a definition's args type is contravariant in encodeArgs.
export type AnyJobDefinition = JobDefinition<string, any, any>

const kindPattern = /^[A-Za-z0-9_.:/-]+$/

/**
 * Checks a job kind (1..128 characters of letters, digits, `_ . : / -`) and returns it, or the typed
 * error saying what is wrong.
 */
export const validateJobKind = (kind: unknown): string | InvalidJobDefinition => {
  if (typeof kind !== "string" || kind.length === 0) {
    return new InvalidJobDefinition({ kind: String(kind), reason: "the kind must be a non-empty string" })
  }
  if (kind.length > maxKindLength) {
    return new InvalidJobDefinition({
      kind: `${kind.slice(0, 40)}…`,
      reason: `the kind is ${kind.length} characters long; at most ${maxKindLength} are allowed`,
    })
  }
  if (!kindPattern.test(kind)) {
    return new InvalidJobDefinition({
      kind,
      reason: 'a kind may contain only letters, digits, "_", ".", ":", "/" and "-"',
    })
  }
  return kind
}

/** Options for `defineJob`: the kind, the args schema and any default insert options. */
export interface DefineJobOptions<Kind extends string, A, I> extends InsertOptions {
  /** The job kind (1..128 characters of letters, digits, `_ . : / -`). */
  readonly kind: Kind
  /** The args schema, for example `Schema.Struct({ to: Schema.String })`. */
  readonly args: JobArgsSchema<A, I>
}

/**
 * Defines a kind of job. Throws `InvalidJobDefinition` (or `InvalidInsertOptions` for bad defaults)
 * at definition time, since a bad definition is a programming error.
 *
 * @example
 * const SendEmail = defineJob({ kind: "send_email", args: Schema.Struct({ to: Schema.String }), queue: "email" })
 */
export const defineJob = <const Kind extends string, A, I>(
  options: DefineJobOptions<Kind, A, I>,
): JobDefinition<Kind, A, I> => {
  const { kind: rawKind, args, ...defaults } = options
  const kind = validateJobKind(rawKind)
  if (typeof kind !== "string") throw kind
  const checked = resolveInsertOptions(kind, undefined, defaults)
  if (checked instanceof Error) throw checked
  const encode = Schema.encodeUnknownResult(args)
  const decode = Schema.decodeUnknownResult(args)
  return {
    kind: rawKind,
    args,
    defaults,
    encodeArgs: (value) => {
      const encoded = encode(value)
      if (Result.isFailure(encoded)) {
        return new InvalidJobArgs({ kind, phase: "insert", issue: encoded.failure.message })
      }
      return serializeJobPayload(kind, "args", encoded.success, maxArgsBytes)
    },
    decodeArgs: (json) =>
      Result.mapError(
        decode(json),
        (error) => new InvalidJobArgs({ kind, phase: "work", issue: error.message }),
      ),
  }
}
