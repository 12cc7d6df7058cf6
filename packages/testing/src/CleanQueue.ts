/**
 * Remove a queue's jobs between tests, through the engine, so one test's jobs and unique keys never leak
 * into the next.
 */
import { makeAdmin } from "@awa/runtime/Admin"
import type { Engine, EngineName, PurgeQueueResult } from "@awa/runtime/Engine"
import type { Db } from "@awa/runtime/PgExecutor"
import { resolveTestEngine } from "./TestEngine.js"

/** Options of {@link cleanQueue}. */
export interface CleanQueueOptions {
  /** The engine (default: `AWA_TEST_ENGINE`, else canonical). */
  readonly engine?: EngineName | Engine
}

/**
 * Deletes every job of `queue` in any state, and its dead-letter entries, through the engine's public
 * admin API (`Admin.purgeQueue`), releasing their unique keys; the queue's settings (paused, DLQ) stay.
 * Resolves to how many were removed. Works on a pool or inside a client's open transaction.
 */
export const cleanQueue = (
  db: Db,
  queue: string,
  options: CleanQueueOptions = {},
): Promise<PurgeQueueResult> => makeAdmin({ engine: resolveTestEngine(options.engine) }).purgeQueue(db, queue)
