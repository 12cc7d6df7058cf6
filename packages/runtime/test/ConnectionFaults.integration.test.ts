// Connections killed with pg_terminate_backend from an admin connection, at each place awa holds one: a
// caller's transaction (withTransaction, PgExecutor.transaction, during COMMIT), a producer's insert, a
// worker's claim, its completion flush and its LISTEN session. The process must never end (vitest fails a run
// on an uncaught exception or an unhandled rejection), callers get typed rejections, and workers recover.
import { defineJob } from "@awa/model/JobDefinition"
import { Effect, Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { ConnectionLost, DatabaseError } from "../src/DatabaseError.js"
import { handle } from "../src/JobHandler.js"
import { PgExecutor, statement, withTransaction } from "../src/PgExecutor.js"
import { job, makeProducer } from "../src/Producer.js"
import { Worker } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { engineMechanics } from "./support/engineMechanics.js"
import { recordEvents } from "./support/events.js"
import { latch, waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const Noop = defineJob({ kind: "noop", args: Schema.Struct({ n: Schema.Number }) })

/** A pool whose connections carry `applicationName`, so the test can find and kill them. */
const namedPool = (applicationName: string): pg.Pool => {
  const pool = new pg.Pool({ connectionString: db.url, max: 4, application_name: applicationName })
  pool.on("error", () => undefined)
  onTestFinished(() => pool.end())
  return pool
}

/** Kills the backends of this database matching `where` (a condition on pg_stat_activity); returns how many. */
const terminate = async (where: string, params: ReadonlyArray<unknown> = []): Promise<number> => {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${where}`,
    [...params],
  )
  return rows[0]!.n
}

/** Waits until a backend of `applicationName` waits on a lock, then kills it. */
const killWhenBlocked = async (applicationName: string): Promise<void> => {
  await waitFor(`a ${applicationName} backend waiting on a lock`, async () => {
    const { rows } = await db.pool.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1
         AND wait_event_type = 'Lock'`,
      [applicationName],
    )
    return rows.length > 0
  })
  expect(await terminate("application_name = $1 AND wait_event_type = 'Lock'", [applicationName])).toBe(1)
}

/** Holds `lockSql` in an open transaction on a connection of its own until `release` is called. */
const holdLock = async (lockSql: string, params: ReadonlyArray<unknown> = []) => {
  const client = await db.pool.connect()
  await client.query("BEGIN")
  await client.query(lockSql, [...params])
  let released = false
  const release = async () => {
    if (released) return
    released = true
    await client.query("COMMIT")
    client.release()
  }
  onTestFinished(release)
  return release
}

const insertedId = (result: Awaited<ReturnType<typeof producer.insert>>): string => {
  if (result._tag !== "Inserted") throw new Error(`expected an insert, got ${result._tag}`)
  return result.id
}

describe("withTransaction", () => {
  it("rejects with ConnectionLost (rolled back) when the connection is killed under a statement", async () => {
    await db.pool.query("CREATE TABLE fault_rows (n int)")
    const pool = namedPool("fault-tx-statement")
    const rejection = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO fault_rows VALUES (1)")
      const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")
      await terminate("pid = $1", [rows[0]!.pid])
      await client.query("INSERT INTO fault_rows VALUES (2)")
    }).catch((error: unknown) => error)
    expect(rejection).toBeInstanceOf(ConnectionLost)
    expect((rejection as ConnectionLost).commitOutcome).toBe("rolled-back")
    expect((rejection as ConnectionLost).message).toContain("safe to retry")
    expect((await db.pool.query("SELECT count(*)::int AS n FROM fault_rows")).rows[0].n).toBe(0)
  })

  it("rejects with ConnectionLost (rolled back) when the connection dies while the client sits idle", async () => {
    // The kill lands while no query runs: pg reports it only through the client's 'error' event, which
    // crashed the process before withTransaction listened for it.
    const pool = namedPool("fault-tx-idle")
    const rejection = await withTransaction(pool, async (client) => {
      const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")
      await terminate("pid = $1", [rows[0]!.pid])
      // Waits without listening for 'error' itself (a listener here would hide the crash): pg marks the
      // client unusable when it sees the connection go.
      await waitFor(
        "pg to notice the lost connection",
        () => !(client as { _queryable?: boolean })._queryable,
      )
      return "done"
    }).catch((error: unknown) => error)
    expect(rejection).toBeInstanceOf(ConnectionLost)
    expect((rejection as ConnectionLost).commitOutcome).toBe("rolled-back")
    // The pool dropped the dead client and serves a working one.
    expect((await pool.query("SELECT 1 AS one")).rows[0].one).toBe(1)
  })

  it("rejects with ConnectionLost (outcome unknown) when the connection is killed during COMMIT", async () => {
    // A deferred constraint trigger makes COMMIT wait on an advisory lock the test holds, so the kill lands
    // while COMMIT is in flight.
    await db.pool.query(`
      CREATE TABLE fault_commit (n int);
      CREATE FUNCTION fault_commit_wait() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_advisory_xact_lock(424242); RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER fault_commit_wait AFTER INSERT ON fault_commit
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_commit_wait();`)
    const release = await holdLock("SELECT pg_advisory_xact_lock(424242)")
    const pool = namedPool("fault-tx-commit")
    const committing = withTransaction(pool, async (client) => {
      await client.query("INSERT INTO fault_commit VALUES (1)")
    }).catch((error: unknown) => error)
    await killWhenBlocked("fault-tx-commit")
    const rejection = await committing
    await release()
    expect(rejection).toBeInstanceOf(ConnectionLost)
    expect((rejection as ConnectionLost).commitOutcome).toBe("unknown")
    expect((rejection as ConnectionLost).message).toContain("may or may not have committed")
  })

  it("passes the caller's own SQL errors through unchanged (no 'run awa migrate')", async () => {
    const rejection = await withTransaction(db.pool, async (client) => {
      await client.query("SELECT * FROM no_such_table_of_the_app")
    }).catch((error: unknown) => error)
    expect(rejection).toBeInstanceOf(pg.DatabaseError)
    expect((rejection as pg.DatabaseError).code).toBe("42P01")
    expect(String((rejection as Error).message)).not.toContain("awa migrate")
    // Even an error that reads like a lost connection (say, from another database's client) is the caller's
    // own while this transaction's connection is fine.
    for (const own of [
      new Error("the caller's own failure"),
      new Error("Connection terminated unexpectedly"),
    ]) {
      await expect(
        withTransaction(db.pool, async () => {
          throw own
        }),
      ).rejects.toBe(own)
    }
  })
})

describe("PgExecutor.transaction", () => {
  it("fails with ConnectionLost (rolled back) when the connection is killed inside the effect", async () => {
    const pool = namedPool("fault-effect-tx")
    const backendPid = statement("test_backend_pid", "SELECT pg_backend_pid() AS pid", { prepared: false })
    const program = Effect.gen(function* () {
      const executor = yield* PgExecutor
      const [row] = yield* Effect.promise(() => executor.query<{ pid: number }>("pid", backendPid, []))
      yield* Effect.promise(() => terminate("pid = $1", [row!.pid]))
      yield* Effect.tryPromise({
        try: () => executor.query("after the kill", backendPid, []),
        catch: (error) => error as DatabaseError,
      })
    })
    const exit = await Effect.runPromise(Effect.flip(PgExecutor.transaction(pool, program)))
    expect(exit).toBeInstanceOf(ConnectionLost)
    expect((exit as ConnectionLost).commitOutcome).toBe("rolled-back")
  })
})

describe("Producer", () => {
  it("says an insert on a pool whose connection was lost may have committed", async () => {
    const pool = namedPool("fault-insert")
    await producer.insert(pool, Noop, { n: 0 }) // the schema check passes before the lock
    const { sql, params } = engineMechanics().blockInsert
    const release = await holdLock(sql, params)
    const inserting = producer.insert(pool, Noop, { n: 1 }).catch((error: unknown) => error)
    await killWhenBlocked("fault-insert")
    const rejection = await inserting
    await release()
    expect(rejection).toBeInstanceOf(ConnectionLost)
    expect((rejection as ConnectionLost).commitOutcome).toBe("unknown")
    expect((rejection as ConnectionLost).operation).toBe("insert job")
  })
})

describe("Worker", () => {
  it("survives its claim being killed and claims again", async () => {
    const pool = namedPool("fault-claim")
    const worker = await Worker.start({
      pool,
      handlers: [handle(Noop, () => {})],
      pollInterval: 20,
      listen: false,
      maintenance: false,
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    const log = recordEvents(worker)
    const { sql, params } = engineMechanics().blockClaim
    const release = await holdLock(sql, params)
    await killWhenBlocked("fault-claim")
    await release()
    const id = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    await waitFor("the job to complete", async () => (await admin.getJob(db.pool, id)).state === "completed")
    const claimErrors = log.ofType("error").filter((e) => e.context === "claim from queue default")
    expect(claimErrors.length).toBeGreaterThan(0)
    expect(claimErrors[0]!.error).toBeInstanceOf(DatabaseError)
    expect((claimErrors[0]!.error as DatabaseError).transient).toBe(true)
    expect(worker.running).toBe(true)
  })

  it("survives its completion flush being killed and writes the outcome again", async () => {
    const pool = namedPool("fault-flush")
    const started = latch<string>()
    const finish = latch()
    const worker = await Worker.start({
      pool,
      handlers: [
        handle(Noop, async (_args, { job }) => {
          started.resolve(job.id)
          await finish.promise
        }),
      ],
      pollInterval: 20,
      heartbeatInterval: 60_000,
      listen: false,
      maintenance: false,
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    const log = recordEvents(worker)
    const id = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    expect(await started.promise).toBe(id)
    // The completion's write waits on the lock the test holds; the kill lands under it.
    const { sql, params } = engineMechanics().blockAttemptWrite(id)
    const release = await holdLock(sql, params)
    finish.resolve()
    await killWhenBlocked("fault-flush")
    await release()
    await waitFor("the job to complete", async () => (await admin.getJob(db.pool, id)).state === "completed")
    const writeErrors = log.ofType("error").filter((e) => e.context === "write outcomes")
    expect(writeErrors.length).toBeGreaterThan(0)
    expect(writeErrors[0]!.error).toBeInstanceOf(DatabaseError)
    expect(log.ofType("completed").map((e) => e.job.id)).toEqual([id])
  })

  it("survives its LISTEN session being killed: reconnects and is woken by NOTIFY again", async () => {
    const worker = await Worker.start({
      pool: db.pool,
      id: "fault-listen",
      handlers: [handle(Noop, () => {})],
      // Polling so slow that only a NOTIFY (or the wake after reconnecting) brings the job in quickly.
      pollInterval: 60_000,
      maintenance: false,
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    const log = recordEvents(worker)
    const listenBackend = "application_name = 'awa-worker:fault-listen'"
    const before = await db.pool.query(`SELECT pid FROM pg_stat_activity WHERE ${listenBackend}`)
    expect(before.rows).toHaveLength(1)
    expect(await terminate(listenBackend)).toBe(1)
    await waitFor("the LISTEN session to come back", async () => {
      const { rows } = await db.pool.query(
        `SELECT pid FROM pg_stat_activity WHERE ${listenBackend} AND query ILIKE 'LISTEN%'`,
      )
      return rows.length === 1 && rows[0].pid !== before.rows[0].pid
    })
    const lost = log.ofType("error").filter((e) => e.context === "listen connection")
    expect(lost.length).toBeGreaterThan(0)
    expect(lost[0]!.error).toBeInstanceOf(DatabaseError)
    const [inserted] = await producer.insertMany(db.pool, [job(Noop, { n: 2 })])
    const id = insertedId(inserted!)
    await waitFor("the job to complete", async () => (await admin.getJob(db.pool, id)).state === "completed")
  })
})
