// `--engine` and `--queue-storage-schema`: which storage engine the commands that touch jobs use, checked
// before anything connects. Unset flags fall back to AWA_ENGINE / AWA_QUEUE_STORAGE_SCHEMA, then to the
// runtime's defaults (canonical, schema awa), exactly as the runtime's own options do.
import { type Admin, makeAdmin } from "@awa/runtime/Admin"
import {
  checkEngineSelection,
  defaultQueueStorageSchema,
  type EngineSelection,
  parseEngineName,
  parseQueueStorageSchema,
} from "@awa/runtime/EngineSelection"
import type { FlagSpec, ParsedCommandLine } from "../CommandLine.js"

/** The engine flags of every command that reads or writes jobs (job, queue, dlq, worker, demo). */
export const engineFlags: Readonly<Record<"engine" | "queue-storage-schema", FlagSpec>> = {
  engine: {
    type: "string",
    description: "storage engine: canonical or queue_storage (default: $AWA_ENGINE, else canonical)",
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

/** The admin API on the engine the flags (or the environment) choose. */
export const adminFor = (flags: ParsedCommandLine["flags"]): Admin => makeAdmin(engineSelection(flags))
