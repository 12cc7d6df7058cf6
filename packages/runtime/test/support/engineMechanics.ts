// How a test stages contention on the engine under test: the lock that holds a producer's insert, a worker's
// claim or an attempt write in flight, and the heartbeat an attempt carries. Fault and race tests ask here
// instead of naming one engine's tables, so they run under every engine (scripts/engine-tests.mjs).
import { testQueueStorageSchemaFromEnv } from "@awa/testing-src/TestEngine.js"
import type pg from "pg"
import { testEngine } from "./awaDatabase.js"

/** An SQL statement and its parameters. */
export interface Staged {
  readonly sql: string
  readonly params: ReadonlyArray<unknown>
}

/** The engine-specific ways to stage contention; every SQL runs on a connection of the test's own. */
export interface EngineMechanics {
  /** Taken in an open transaction: makes the next insert wait. */
  readonly blockInsert: Staged
  /** Taken in an open transaction: makes the next claim wait. */
  readonly blockClaim: Staged
  /** Taken in an open transaction: makes the next outcome write (completion, retry, fail) of job `id` wait. */
  readonly blockAttemptWrite: (id: string) => Staged
  /** Sets the heartbeat of the open attempt (`id`, `runLease`) to `ageMs` ago. */
  readonly ageHeartbeat: (
    db: pg.Pool | pg.PoolClient,
    id: string,
    runLease: number,
    ageMs: number,
  ) => Promise<void>
  /**
   * Starts a heartbeat of the attempt on `client` inside its open transaction, as a worker's heartbeat write
   * does, and leaves it uncommitted: the caller commits or rolls back.
   */
  readonly heartbeatInFlight: (client: pg.PoolClient, id: string, runLease: number) => Promise<void>
}

const canonical: EngineMechanics = {
  blockInsert: { sql: "LOCK TABLE awa.jobs IN SHARE MODE", params: [] },
  blockClaim: { sql: "LOCK TABLE awa.jobs IN ACCESS EXCLUSIVE MODE", params: [] },
  blockAttemptWrite: (id) => ({ sql: "SELECT id FROM awa.jobs WHERE id = $1 FOR UPDATE", params: [id] }),
  ageHeartbeat: async (db, id, _runLease, ageMs) => {
    await db.query("UPDATE awa.jobs SET heartbeat_at = now() - $2 * interval '1 millisecond' WHERE id = $1", [
      id,
      ageMs,
    ])
  },
  heartbeatInFlight: async (client, id) => {
    await client.query("UPDATE awa.jobs SET heartbeat_at = now() WHERE id = $1", [id])
  },
}

const queueStorage = (schema: string): EngineMechanics => ({
  // An insert appends to the ready ring (its parent table is locked ROW EXCLUSIVE by every append).
  blockInsert: { sql: `LOCK TABLE ${schema}.ready_entries IN SHARE MODE`, params: [] },
  // Every claim first reads the queue's settings (is it paused?), even before the queue has a lane.
  blockClaim: { sql: `LOCK TABLE ${schema}.queue_settings IN ACCESS EXCLUSIVE MODE`, params: [] },
  // Every attempt end inserts its closure first.
  blockAttemptWrite: () => ({ sql: `LOCK TABLE ${schema}.closures IN SHARE MODE`, params: [] }),
  ageHeartbeat: async (db, id, runLease, ageMs) => {
    await db.query(
      `INSERT INTO ${schema}.attempt_state (id, run_lease, heartbeat_at)
       VALUES ($1, $2, now() - $3 * interval '1 millisecond')
       ON CONFLICT (id, run_lease) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [id, runLease, ageMs],
    )
  },
  heartbeatInFlight: async (client, id, runLease) => {
    await client.query(`SELECT * FROM ${schema}.heartbeat_attempts($1::bigint[], $2::bigint[])`, [
      [id],
      [runLease],
    ])
  },
})

/** The mechanics of the engine under test (`AWA_TEST_ENGINE`). */
export const engineMechanics = (): EngineMechanics =>
  testEngine.name === "queue_storage" ? queueStorage(testQueueStorageSchemaFromEnv()) : canonical
