// `--engine` and `--queue-storage-schema`: which storage engine the commands that touch jobs use, checked
// before anything connects. Unset flags fall back to AWA_ENGINE / AWA_QUEUE_STORAGE_SCHEMA, then to the
// runtime's defaults (the database's storage state, schema awa), exactly as the runtime's own options do.
import { type Admin, makeAdmin } from "@awa/runtime/Admin"
import { DatabaseError } from "@awa/runtime/DatabaseError"
import {
  checkEngineSelection,
  defaultQueueStorageSchema,
  type EngineSelection,
  parseEngineName,
  parseQueueStorageSchema,
} from "@awa/runtime/EngineSelection"
import type { FreshActivation } from "@awa/runtime/StorageState"
import { Data } from "effect"
import type { FlagSpec, ParsedCommandLine } from "../CommandLine.js"

/** The chosen queue-storage schema does not exist (or lacks awa's objects) in the database. */
export class QueueStorageSchemaMissing extends Data.TaggedError("QueueStorageSchemaMissing")<{
  readonly schema: string
  readonly detail: string
}> {
  override get message(): string {
    return `The queue-storage schema ${this.schema} is not prepared in this database (${this.detail}). Run \`awa storage prepare-queue-storage-schema --schema ${this.schema}\` against it first, or choose another schema with --queue-storage-schema / AWA_QUEUE_STORAGE_SCHEMA.`
  }
}

/**
 * Turns a database error about a missing object of a custom queue-storage schema into
 * `QueueStorageSchemaMissing` (exit 3); anything else is returned as is. Schema `awa` is left to the
 * "run awa migrate" explanation, since `awa migrate` installs it.
 */
export const explainQueueStorageError = (selection: EngineSelection, error: unknown): unknown => {
  if (!(error instanceof DatabaseError) || error.sqlStateClass !== "undefined-object") return error
  const checked = checkEngineSelection(selection)
  const schema = checked.queueStorageSchema
  if (checked.engine !== "queue_storage" || schema === defaultQueueStorageSchema) return error
  // Schema names are plain identifiers (checked), so they are safe inside a pattern.
  const mentioned = new RegExp(`(^|[^a-z0-9_])${schema}([^a-z0-9_]|$)`).test(error.detail)
  return mentioned ? new QueueStorageSchemaMissing({ schema, detail: error.detail }) : error
}

/** The engine flags of every command that reads or writes jobs (job, queue, dlq, worker, demo). */
export const engineFlags: Readonly<Record<"engine" | "queue-storage-schema", FlagSpec>> = {
  engine: {
    type: "string",
    description:
      "storage engine: canonical or queue_storage (default: $AWA_ENGINE, else the database's storage state; for tests and benchmarks)",
  },
  "queue-storage-schema": {
    type: "string",
    description:
      "schema of the queue_storage engine, awa or one prepared with awa storage prepare-queue-storage-schema (default: $AWA_QUEUE_STORAGE_SCHEMA, else awa)",
  },
}

/**
 * The engine selection the flags give, checked together with the environment (so a bad AWA_ENGINE fails
 * here too, exit 2, with the variable named). Throws `InvalidEngineSelection`.
 */
export const engineSelection = (
  flags: ParsedCommandLine["flags"],
  env: NodeJS.ProcessEnv = process.env,
): EngineSelection => {
  const engine = parseEngineName(flags.engine, "--engine")
  const queueStorageSchema = parseQueueStorageSchema(flags["queue-storage-schema"], "--queue-storage-schema")
  const selection: EngineSelection = {
    ...(engine === undefined ? {} : { engine }),
    ...(queueStorageSchema === undefined ? {} : { queueStorageSchema }),
  }
  checkEngineSelection(selection, env)
  return selection
}

/** The engine a selection names, for people: `canonical`, or `queue_storage` with its schema when not `awa`. */
export const engineLabel = (selection: EngineSelection, env: NodeJS.ProcessEnv = process.env): string => {
  const checked = checkEngineSelection(selection, env)
  if (typeof checked.engine === "object") return checked.engine.name
  return checked.engine === "queue_storage" && checked.queueStorageSchema !== defaultQueueStorageSchema
    ? `queue_storage (schema ${checked.queueStorageSchema})`
    : checked.engine
}

/**
 * The engine a process that follows the storage state uses, as its start showed it (`queue_storage`, with
 * a non-default schema named; `mixed`; `canonical`), followed by what the start did: a fresh database
 * activated, or "follows the storage state".
 */
export const followedEngineLabel = (activation: FreshActivation): string => {
  const engine =
    activation.state === "active"
      ? `queue_storage${activation.queueStorageSchema === defaultQueueStorageSchema ? "" : ` (schema ${activation.queueStorageSchema})`}`
      : activation.state === "mixed"
        ? "mixed"
        : "canonical"
  return activation.outcome === "activated"
    ? `${engine} (a fresh database: activated at this start; follows the storage state)`
    : `${engine} (follows the storage state)`
}

/**
 * The admin API on the engine the flags (or the environment) choose; an operation that fails because a
 * custom queue-storage schema is not prepared says so (`QueueStorageSchemaMissing`).
 */
export const adminFor = (flags: ParsedCommandLine["flags"]): Admin => {
  const selection = engineSelection(flags)
  const admin = makeAdmin(selection)
  return Object.fromEntries(
    Object.entries(admin).map(([name, operation]) => [
      name,
      async (...args: ReadonlyArray<unknown>) => {
        try {
          return await (operation as (...a: ReadonlyArray<unknown>) => Promise<unknown>)(...args)
        } catch (error) {
          throw explainQueueStorageError(selection, error)
        }
      },
    ]),
  ) as unknown as Admin
}
