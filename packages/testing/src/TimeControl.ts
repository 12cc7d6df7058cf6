/**
 * Time control for tests: make scheduled and backed-off jobs due now instead of sleeping until they are.
 */
import { makeAdmin } from "@awa/runtime/Admin"
import type { Engine, EngineName } from "@awa/runtime/Engine"
import type { Db } from "@awa/runtime/PgExecutor"
import type { Duration } from "effect"
import { resolveTestEngine } from "./TestEngine.js"

/** Which jobs {@link makeJobsDue} makes due; every field narrows, none means every scheduled and retrying job. */
export interface DueJobs {
  /** Only these job ids. */
  readonly ids?: ReadonlyArray<string>
  /** Only this queue. */
  readonly queue?: string
  /** Only this kind. */
  readonly kind?: string
  /**
   * Only jobs due within this duration from now, as if that much time had passed (e.g. `"10 minutes"`
   * leaves a job scheduled in an hour alone). Default: any run time.
   */
  readonly within?: Duration.Input
  /** The engine (default: `AWA_TEST_ENGINE`, else canonical). */
  readonly engine?: EngineName | Engine
}

/**
 * Makes scheduled jobs (inserted with a delay or run time, or snoozed) and retrying jobs (backed off after
 * an error) available now, through the engine's public admin API (`Admin.makeDue`): their run time moves to
 * now, their attempt counts stay, and workers of their queues are woken. Resolves to the ids made due, in
 * id order. Works on a pool or inside a client's open transaction.
 */
export const makeJobsDue = (db: Db, jobs: DueJobs = {}): Promise<ReadonlyArray<string>> => {
  const { engine, ...target } = jobs
  const filtered = target.ids !== undefined || target.queue !== undefined || target.kind !== undefined
  return makeAdmin({ engine: resolveTestEngine(engine) }).makeDue(
    db,
    filtered ? target : { ...target, all: true },
  )
}
