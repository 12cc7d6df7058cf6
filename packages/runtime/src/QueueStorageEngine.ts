/**
 * The queue-storage engine (append-only ring storage). PLACEHOLDER of the engine-select branch: the engine
 * itself is built on the qs-engine branch, whose file replaces this one when both are merged. Until then
 * choosing `queue_storage` fails with `QueueStorageNotAvailable`.
 */
import { Data } from "effect"
import type { Engine } from "./Engine.js"

/** Options of `makeQueueStorageEngine`. */
export interface QueueStorageEngineOptions {
  /** The schema the queue-storage substrate lives in (default `awa`). */
  readonly schema?: string
}

/** Choosing the queue-storage engine in a build of awa that does not contain it. */
export class QueueStorageNotAvailable extends Data.TaggedError("QueueStorageNotAvailable")<{
  readonly schema: string
}> {
  override get message(): string {
    return `The queue_storage engine (schema ${this.schema}) is not available in this build of @awa/runtime. Use the canonical engine (engine: "canonical", AWA_ENGINE=canonical or --engine canonical), or a build that includes queue storage.`
  }
}

/** Makes the queue-storage engine for `options.schema` (default `awa`). Not available in this build. */
export const makeQueueStorageEngine = (options?: QueueStorageEngineOptions): Engine => {
  throw new QueueStorageNotAvailable({ schema: options?.schema ?? "awa" })
}
