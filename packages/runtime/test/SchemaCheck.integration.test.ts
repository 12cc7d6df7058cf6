// Producers and workers check the database before their first work: an unmigrated database says to run
// `awa migrate`, a role without the runtime's grants says which grants; a role holding exactly the grants
// documented in docs/permissions.md runs a producer and a worker end to end.
import { randomBytes } from "node:crypto"
import { defineJob } from "@awa/model/JobDefinition"
import { AwaPrivilegesMissing, AwaSchemaNotReady, runtimeGrants } from "@awa/model/SchemaErrors"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { DatabaseError } from "../src/DatabaseError.js"
import { handle } from "../src/JobHandler.js"
import { makeProducer } from "../src/Producer.js"
import { checkSchema } from "../src/SchemaCheck.js"
import { Worker } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const admin = makeAdmin()
const Noop = defineJob({ kind: "noop", args: Schema.Struct({}) })

const poolFor = (url: string): pg.Pool => {
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  pool.on("error", () => undefined)
  onTestFinished(() => pool.end())
  return pool
}

/** The URL of the server's `postgres` database, as the test database's owner. */
const serverUrl = (): string => {
  const url = new URL(db.url)
  url.pathname = "/postgres"
  return url.href
}

/** A login role of this test (roles are server-wide: a unique name, dropped afterwards) and a URL for it. */
const loginRole = async (): Promise<{ role: string; url: string }> => {
  const role = `awa_rt_${randomBytes(4).toString("hex")}`
  const password = randomBytes(8).toString("hex")
  await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`)
  // Cleanup runs after the test's database is dropped (taking the role's grants with it), from the
  // server's maintenance database.
  const server = serverUrl()
  onTestFinished(async () => {
    const client = new pg.Client({ connectionString: server })
    await client.connect()
    await client.query(`DROP ROLE IF EXISTS ${role}`).finally(() => client.end())
  })
  const url = new URL(db.url)
  url.username = role
  url.password = password
  return { role, url: url.href }
}

/** An empty database next to the test's (no awa schema), dropped afterwards. */
const emptyDatabase = async (): Promise<string> => {
  const name = `awa_empty_${randomBytes(4).toString("hex")}`
  await db.pool.query(`CREATE DATABASE ${name}`)
  const server = serverUrl()
  onTestFinished(async () => {
    const client = new pg.Client({ connectionString: server })
    await client.connect()
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => client.end())
  })
  const url = new URL(db.url)
  url.pathname = `/${name}`
  return url.href
}

describe("the schema check", () => {
  it("passes on a migrated database", async () => {
    await expect(checkSchema(db.pool)).resolves.toBeUndefined()
  })

  it("refuses an unmigrated database up front with AwaSchemaNotReady, in Worker.start and a producer's first insert", async () => {
    const pool = poolFor(await emptyDatabase())
    const started = await Worker.start({ pool, handlers: [handle(Noop, () => {})] }).catch((e: unknown) => e)
    expect(started).toBeInstanceOf(AwaSchemaNotReady)
    expect((started as AwaSchemaNotReady).reason).toBe("missing")
    expect((started as Error).message).toContain("Run `awa migrate`")
    const inserted = await makeProducer()
      .insert(pool, Noop, {})
      .catch((e: unknown) => e)
    expect(inserted).toBeInstanceOf(AwaSchemaNotReady)
    // Opting out of the check gives the bare SQL error instead.
    const unchecked = await makeProducer({ checkSchema: false })
      .insert(pool, Noop, {})
      .catch((e: unknown) => e)
    expect(unchecked).toBeInstanceOf(DatabaseError)
  })

  it("checks once per pool and retries a failed check", async () => {
    const producer = makeProducer()
    await producer.insert(db.pool, Noop, {})
    const removed = await db.pool.query(
      "DELETE FROM awa_migrator.ledger WHERE migration_set = 'canonical' RETURNING *",
    )
    // Passed before on this pool: not checked again.
    await expect(producer.insert(db.pool, Noop, {})).resolves.toMatchObject({ _tag: "Inserted" })
    // A new producer checks, and a failed check is not remembered.
    const fresh = makeProducer()
    await expect(fresh.insert(db.pool, Noop, {})).rejects.toBeInstanceOf(AwaSchemaNotReady)
    // Every canonical migration restored (whatever the latest version is), as `awa migrate` had left them.
    await db.pool.query(
      "INSERT INTO awa_migrator.ledger SELECT * FROM json_populate_recordset(NULL::awa_migrator.ledger, $1::json)",
      [JSON.stringify(removed.rows)],
    )
    await expect(fresh.insert(db.pool, Noop, {})).resolves.toMatchObject({ _tag: "Inserted" })
  })

  it("says the ledger has no canonical migration when its rows are gone", async () => {
    await db.pool.query("DELETE FROM awa_migrator.ledger WHERE migration_set = 'canonical'")
    const error = await checkSchema(db.pool).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AwaSchemaNotReady)
    expect((error as Error).message).toContain("the ledger records no canonical migration")
  })

  it("refuses a queue-storage set older than this code, in Worker.start and a producer's first insert", async () => {
    const latest = await db.pool.query<{ version: number }>(
      "SELECT max(version)::integer AS version FROM awa_migrator.ledger WHERE migration_set = 'queue-storage' AND instance = 'awa'",
    )
    const newest = latest.rows[0]!.version
    // As if the last queue-storage migration were not applied yet (its functions are still there, but the
    // ledger is what the check reads, as `awa migrate` does).
    await db.pool.query(
      "DELETE FROM awa_migrator.ledger WHERE migration_set = 'queue-storage' AND instance = 'awa' AND version = $1",
      [newest],
    )
    const outdated = `queue-storage set in schema awa at version ${newest - 1}, this code needs version ${newest}`
    const error = await checkSchema(db.pool).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AwaSchemaNotReady)
    expect((error as AwaSchemaNotReady).reason).toBe("outdated")
    expect((error as Error).message).toContain(outdated)
    const producer = makeProducer({ engine: "queue_storage" })
    await expect(producer.insert(db.pool, Noop, {})).rejects.toThrow(outdated)
    await expect(
      Worker.start({
        pool: poolFor(db.url),
        engine: "queue_storage",
        queues: ["q"],
        handlers: [handle(Noop, () => {})],
      }),
    ).rejects.toThrow(outdated)
    // A schema without queue storage installed is not this check's business (canonical-only databases).
    await expect(checkSchema(db.pool, "no_queue_storage_here")).resolves.toBeUndefined()
  })
})

describe("privileges", () => {
  it("runs a producer and a worker as a role holding only the documented grants", async () => {
    const { role, url } = await loginRole()
    for (const grant of runtimeGrants) await db.pool.query(grant.replace("<role>", role))
    const pool = poolFor(url)
    const producer = makeProducer()
    const inserted = await producer.insert(pool, Noop, {})
    if (inserted._tag !== "Inserted") throw new Error("expected an insert")
    const worker = await Worker.start({
      pool,
      handlers: [handle(Noop, () => {})],
      pollInterval: 20,
      maintenance: { electionInterval: 10, promoteInterval: 10 },
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    await waitFor(
      "the job to complete",
      async () => (await admin.getJob(db.pool, inserted.id)).state === "completed",
    )
    await waitFor("the worker to lead maintenance", () => worker.maintenance?.isLeader === true)
  })

  it("refuses a role without them with AwaPrivilegesMissing naming what is missing and the grants", async () => {
    const { role, url } = await loginRole()
    const pool = poolFor(url)
    const started = await Worker.start({ pool, handlers: [handle(Noop, () => {})] }).catch((e: unknown) => e)
    expect(started).toBeInstanceOf(AwaPrivilegesMissing)
    const error = started as AwaPrivilegesMissing
    expect(error.role).toBe(role)
    expect(error.missing).toContain("USAGE on schema awa")
    expect(error.message).toContain(`GRANT USAGE ON SCHEMA awa, awa_migrator TO "${role}"`)
    expect(error.message).toContain("docs/permissions.md")
    const inserted = await makeProducer()
      .insert(pool, Noop, {})
      .catch((e: unknown) => e)
    expect(inserted).toBeInstanceOf(AwaPrivilegesMissing)
    // Half the grants: the check names the table privileges still missing.
    await db.pool.query(`GRANT USAGE ON SCHEMA awa, awa_migrator TO ${role}`)
    await db.pool.query(`GRANT SELECT ON ALL TABLES IN SCHEMA awa TO ${role}`)
    const partial = (await checkSchema(pool).catch((e: unknown) => e)) as AwaPrivilegesMissing
    expect(partial).toBeInstanceOf(AwaPrivilegesMissing)
    expect(partial.missing).toContain("UPDATE on awa.jobs")
    expect(partial.missing).toContain("SELECT on awa_migrator.ledger")
    expect(partial.missing).not.toContain("SELECT on awa.jobs")
  })

  it("explains a permission error met mid-operation (a producer without the check) with the grants", async () => {
    const { url } = await loginRole()
    const error = await makeProducer({ checkSchema: false })
      .insert(poolFor(url), Noop, {})
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DatabaseError)
    expect((error as DatabaseError).sqlStateClass).toBe("insufficient-privilege")
    expect((error as Error).message).toContain(
      "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA awa",
    )
  })
})
