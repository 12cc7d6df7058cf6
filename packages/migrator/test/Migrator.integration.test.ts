import {
  DatabaseAheadOfCode,
  DatabaseUnreachable,
  InvalidIdentifier,
  MigrationDrift,
  MigrationFailed,
  PgmqProviderUnavailable,
  ResetRefused,
  UnknownMigrationSet,
} from "@awa/model"
import { describe, expect, it } from "vitest"
import { migrate, migrationStatus, planMigrations, prepareQueueStorageSchema } from "../src/MigrateApi.js"
import { getMigrationSet } from "../src/MigrationSet.js"
import { hasTable, snapshotCatalog, withClient } from "./support/catalog.js"
import { freshDatabases } from "./support/databases.js"

const expectedCanonical = getMigrationSet("canonical").latestVersion
const expectedQueueStorage = getMigrationSet("queue-storage").latestVersion

describe("migrate on a fresh database", () => {
  it("applies canonical and queue-storage(awa), then changes nothing on the second and third runs", async () => {
    const db = await freshDatabases("single")
    const first = await migrate({ databaseUrl: db.primaryUrl })
    expect(first.applied.map((a) => `${a.set}/${a.instance}/${a.version}`)).toEqual([
      ...Array.from({ length: expectedCanonical }, (_, i) => `canonical/awa/${i + 1}`),
      ...Array.from({ length: expectedQueueStorage }, (_, i) => `queue-storage/awa/${i + 1}`),
    ])
    const before = await snapshotCatalog(db.primaryUrl)
    const second = await migrate({ databaseUrl: db.primaryUrl })
    const third = await migrate({ databaseUrl: db.primaryUrl })
    expect(second.applied).toEqual([])
    expect(third.applied).toEqual([])
    expect(await snapshotCatalog(db.primaryUrl)).toEqual(before)
    const status = await migrationStatus({ databaseUrl: db.primaryUrl })
    expect(
      status.map((s) => [s.set, s.instance, s.applied, s.latest, s.pending.length, s.drift.length]),
    ).toEqual([
      ["canonical", "awa", expectedCanonical, expectedCanonical, 0, 0],
      ["queue-storage", "awa", expectedQueueStorage, expectedQueueStorage, 0, 0],
    ])
    expect(await hasTable(db.primaryUrl, "awa.jobs")).toBe(true)
    // The ledger records every migration with its checksum and duration.
    const ledger = await withClient(
      db.primaryUrl,
      async (c) =>
        (
          await c.query(
            "SELECT migration_set, instance, version, checksum, duration_ms, applied_at FROM awa_migrator.ledger",
          )
        ).rows,
    )
    expect(ledger).toHaveLength(expectedCanonical + expectedQueueStorage)
    for (const row of ledger) {
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/)
      expect(row.duration_ms).toBeGreaterThanOrEqual(0)
      expect(row.applied_at).toBeInstanceOf(Date)
    }
  })

  it("16 concurrent migrate calls all succeed and apply every migration exactly once", async () => {
    const db = await freshDatabases("single")
    const reports = await Promise.all(
      Array.from({ length: 16 }, () => migrate({ databaseUrl: db.primaryUrl })),
    )
    const appliedNow = reports.flatMap((r) => r.applied.map((a) => `${a.set}/${a.instance}/${a.version}`))
    expect(appliedNow).toHaveLength(expectedCanonical + expectedQueueStorage)
    expect(new Set(appliedNow).size).toBe(appliedNow.length)
    const rows = await withClient(
      db.primaryUrl,
      async (c) =>
        (
          await c.query(
            "SELECT count(*)::int AS n, count(DISTINCT (migration_set, instance, version))::int AS d FROM awa_migrator.ledger",
          )
        ).rows[0],
    )
    expect(rows).toEqual({
      n: expectedCanonical + expectedQueueStorage,
      d: expectedCanonical + expectedQueueStorage,
    })
  })

  it("dry-run plans without changing anything", async () => {
    const db = await freshDatabases("single")
    const plan = await planMigrations({ databaseUrl: db.primaryUrl })
    expect(plan.length).toBe(expectedCanonical + expectedQueueStorage)
    expect(plan[0]?.sql).toContain("CREATE")
    expect((await snapshotCatalog(db.primaryUrl)).schemas).toEqual([])
  })
})

describe("split and single mode", () => {
  it("split mode puts the pgmq set (and only it) on the pgmq database", async () => {
    const db = await freshDatabases("split")
    expect(db.pgmqUrl).not.toBe(db.primaryUrl)
    await migrate({ databaseUrl: db.primaryUrl, pgmqDatabaseUrl: db.pgmqUrl, withPgmq: true })
    const primary = await snapshotCatalog(db.primaryUrl)
    const pgmqDb = await snapshotCatalog(db.pgmqUrl)
    expect(primary.schemas).toEqual(["awa", "awa_migrator"])
    expect(primary.functions.filter((f) => f.startsWith("pgmq.") || f.startsWith("awa_pgmq."))).toEqual([])
    expect(pgmqDb.schemas).toEqual(["awa_migrator", "awa_pgmq", "pgmq"])
    expect(pgmqDb.tables.filter((t) => t.startsWith("awa."))).toEqual([])
    expect(pgmqDb.functions.some((f) => f.startsWith("pgmq.send("))).toBe(true)
    expect(pgmqDb.ledger.every((l) => l.startsWith("pgmq/"))).toBe(true)
    expect(primary.ledger.some((l) => l.startsWith("pgmq/"))).toBe(false)
  })

  it("once installed, pgmq is kept up to date and reported without --with-pgmq, in either mode", async () => {
    for (const mode of ["single", "split"] as const) {
      const db = await freshDatabases(mode)
      const urls = { databaseUrl: db.primaryUrl, pgmqDatabaseUrl: db.pgmqUrl }
      expect((await migrationStatus(urls)).map((s) => s.set)).toEqual(["canonical", "queue-storage"])
      await migrate({ ...urls, withPgmq: true })
      const status = await migrationStatus(urls)
      expect(status.map((s) => [s.set, s.pending.length])).toEqual([
        ["canonical", 0],
        ["queue-storage", 0],
        ["pgmq", 0],
      ])
      expect(await planMigrations(urls)).toEqual([])
      // An applied pgmq migration edited afterwards is caught by a plain migrate, changing nothing.
      await withClient(db.pgmqUrl, (c) =>
        c.query(
          "UPDATE awa_migrator.ledger SET checksum = repeat('0', 64) WHERE migration_set = 'pgmq' AND version = 1",
        ),
      )
      const before = await snapshotCatalog(db.pgmqUrl)
      const error = await migrate(urls).catch((e: unknown) => e)
      expect(error, mode).toBeInstanceOf(MigrationDrift)
      expect((error as Error).message).toMatch(/pgmq\/pgmq version 1/)
      expect(await snapshotCatalog(db.pgmqUrl)).toEqual(before)
      // An explicit --set still narrows to what was asked for.
      expect((await migrationStatus({ ...urls, sets: ["canonical"] })).map((s) => s.set)).toEqual([
        "canonical",
      ])
    }
  })

  it("single mode puts everything in one database", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl, pgmqDatabaseUrl: db.primaryUrl, withPgmq: true })
    const snapshot = await snapshotCatalog(db.primaryUrl)
    expect(snapshot.schemas).toEqual(["awa", "awa_migrator", "awa_pgmq", "pgmq"])
    expect(snapshot.ledger.filter((l) => l.startsWith("pgmq/pgmq/1/"))[0]).toContain('"provider": "sql"')
  })
})

describe("pgmq provider", () => {
  it("uses an existing pgmq schema as is and only adds awa's helpers", async () => {
    const db = await freshDatabases("single")
    // A pgmq installed by someone else: here awa's own SQL API, applied outside the migrator.
    const foreign = getMigrationSet("pgmq").migrations.find((m) => m.directives.when.provider === "sql")
    await withClient(db.primaryUrl, (c) => c.query(foreign?.source ?? ""))
    const before = await snapshotCatalog(db.primaryUrl)
    const report = await migrate({ databaseUrl: db.primaryUrl, withPgmq: true })
    expect(report.status.find((s) => s.set === "pgmq")?.params.provider).toBe("existing")
    const after = await snapshotCatalog(db.primaryUrl)
    // Nothing of the existing pgmq schema changed; awa's helpers were added beside it.
    expect(after.functions.filter((f) => f.startsWith("pgmq."))).toEqual(
      before.functions.filter((f) => f.startsWith("pgmq.")),
    )
    expect(after.schemas).toContain("awa_pgmq")
  })

  it("refuses providers the database cannot honour, changing nothing", async () => {
    const db = await freshDatabases("single")
    const extension = await migrate({
      databaseUrl: db.primaryUrl,
      withPgmq: true,
      pgmqProvider: "extension",
    }).catch((e: unknown) => e)
    expect(extension).toBeInstanceOf(PgmqProviderUnavailable)
    expect((extension as Error).message).toContain("does not offer the pgmq extension")
    const existing = await migrate({
      databaseUrl: db.primaryUrl,
      withPgmq: true,
      pgmqProvider: "existing",
    }).catch((e: unknown) => e)
    expect(existing).toBeInstanceOf(PgmqProviderUnavailable)
    expect((await snapshotCatalog(db.primaryUrl)).schemas).toEqual([])
    // Once installed with one provider, a different override is refused.
    await migrate({ databaseUrl: db.primaryUrl, withPgmq: true })
    const switched = await migrate({
      databaseUrl: db.primaryUrl,
      withPgmq: true,
      pgmqProvider: "existing",
    }).catch((e: unknown) => e)
    expect(switched).toBeInstanceOf(PgmqProviderUnavailable)
    expect((switched as Error).message).toContain(
      'already installed on the primary database with provider "sql"',
    )
  })
})

describe("refusals change nothing", () => {
  it("refuses a ledger ahead of the code, naming both versions", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl })
    await withClient(db.primaryUrl, (c) =>
      c.query(
        "INSERT INTO awa_migrator.ledger (migration_set, instance, version, name, checksum) VALUES ('canonical', 'awa', $1, 'from_the_future', 'x')",
        [expectedCanonical + 5],
      ),
    )
    const before = await snapshotCatalog(db.primaryUrl)
    const error = await migrate({ databaseUrl: db.primaryUrl }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DatabaseAheadOfCode)
    expect((error as Error).message).toContain(`version ${expectedCanonical + 5}`)
    expect((error as Error).message).toContain(`up to version ${expectedCanonical}`)
    expect(await snapshotCatalog(db.primaryUrl)).toEqual(before)
  })

  it("refuses an edited applied migration as drift", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl, sets: ["canonical"] })
    await withClient(db.primaryUrl, (c) =>
      c.query(
        "UPDATE awa_migrator.ledger SET checksum = repeat('0', 64) WHERE migration_set = 'canonical' AND version = 1",
      ),
    )
    const before = await snapshotCatalog(db.primaryUrl)
    const error = await migrate({ databaseUrl: db.primaryUrl }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationDrift)
    expect((error as Error).message).toMatch(/drift.*canonical\/awa version 1/i)
    // queue-storage was pending but nothing was applied because of the refusal.
    expect(await snapshotCatalog(db.primaryUrl)).toEqual(before)
    const status = await migrationStatus({ databaseUrl: db.primaryUrl })
    expect(status.find((s) => s.set === "canonical")?.drift.map((d) => d.version)).toEqual([1])
  })

  it("a failing migration rolls back entirely and names the file and Postgres's message", async () => {
    const db = await freshDatabases("single")
    // A table that collides with the canonical set makes its first migration fail part-way.
    await withClient(db.primaryUrl, (c) => c.query("CREATE SCHEMA awa; CREATE TABLE awa.queues (x int)"))
    const before = await snapshotCatalog(db.primaryUrl)
    const error = await migrate({ databaseUrl: db.primaryUrl }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFailed)
    const message = (error as Error).message
    expect(message).toContain(getMigrationSet("canonical").migrations[0]?.file)
    expect(message).toMatch(/already exists/)
    expect((error as MigrationFailed).sqlState).toBeDefined()
    // Only the ledger bootstrap remains; every object of the failed migration and its ledger row are gone.
    const after = await snapshotCatalog(db.primaryUrl)
    const withoutLedger = (xs: ReadonlyArray<string>) => xs.filter((x) => !x.includes("awa_migrator"))
    for (const key of [
      "schemas",
      "tables",
      "columns",
      "indexes",
      "constraints",
      "functions",
      "types",
      "triggers",
    ] as const) {
      expect(withoutLedger(after[key]), key).toEqual(withoutLedger(before[key]))
    }
    expect(after.ledger).toEqual([])
  })
})

describe("queue-storage in custom schemas", () => {
  it("installs a second substrate with its own ledger rows, and later migrate runs reach it", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl })
    const report = await prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "tenant_a" })
    expect(report.applied.map((a) => `${a.set}/${a.instance}/${a.version}`)).toEqual(
      Array.from({ length: expectedQueueStorage }, (_, i) => `queue-storage/tenant_a/${i + 1}`),
    )
    const snapshot = await snapshotCatalog(db.primaryUrl)
    expect(snapshot.schemas).toContain("tenant_a")
    expect(snapshot.ledger.filter((l) => l.startsWith("queue-storage/tenant_a/"))).toHaveLength(
      expectedQueueStorage,
    )
    const status = await migrationStatus({ databaseUrl: db.primaryUrl })
    expect(status.map((s) => `${s.set}/${s.instance}`)).toEqual([
      "canonical/awa",
      "queue-storage/awa",
      "queue-storage/tenant_a",
    ])
    // Reset re-creates a custom schema from scratch.
    const metaRows = () =>
      withClient(
        db.primaryUrl,
        async (c) => (await c.query("SELECT key FROM tenant_a.queue_storage_meta")).rowCount,
      )
    await withClient(db.primaryUrl, (c) =>
      c.query(`INSERT INTO tenant_a.queue_storage_meta (key, value) VALUES ('extra', '1')`),
    )
    expect(await metaRows()).toBe(2)
    await prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "tenant_a", reset: true })
    expect(await metaRows()).toBe(1)
    expect(await snapshotCatalog(db.primaryUrl)).toEqual(snapshot)
    // A reset of a schema that does not exist yet just prepares it.
    await prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "tenant_b", reset: true })
    expect(await hasTable(db.primaryUrl, "tenant_b.queue_storage_meta")).toBe(true)
  })

  it("refuses a --reset that would drop anything awa did not create, changing nothing", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl })
    await prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "tenant_a" })
    await prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "tenant_b" })
    await withClient(db.primaryUrl, (c) =>
      c.query(`CREATE SCHEMA myapp; CREATE TABLE myapp.orders (id int); INSERT INTO myapp.orders VALUES (1);
        CREATE TABLE tenant_a.notes (x int);
        CREATE VIEW public.tenant_meta AS SELECT key FROM tenant_b.queue_storage_meta`),
    )
    const before = await snapshotCatalog(db.primaryUrl)
    const cases = [
      ["myapp", /awa did not prepare it/],
      ["tenant_a", /relations awa did not create \(notes\)/],
      ["tenant_b", /would also drop objects outside it that depend on it \(.*view public\.tenant_meta/],
    ] as const
    for (const [schema, reason] of cases) {
      const error = await prepareQueueStorageSchema({
        databaseUrl: db.primaryUrl,
        schema,
        reset: true,
      }).catch((e: unknown) => e)
      expect(error, schema).toBeInstanceOf(ResetRefused)
      expect((error as Error).message, schema).toMatch(reason)
      expect((error as Error).message).toMatch(/Nothing was changed/)
    }
    expect(await snapshotCatalog(db.primaryUrl)).toEqual(before)
    expect(await hasTable(db.primaryUrl, "myapp.orders")).toBe(true)
  })

  it("refuses --reset of awa and of any schema holding canonical tables, changing nothing", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl })
    await withClient(db.primaryUrl, (c) =>
      c.query("CREATE SCHEMA look_alike; CREATE TABLE look_alike.jobs (id int)"),
    )
    const before = await snapshotCatalog(db.primaryUrl)
    for (const schema of ["awa", "look_alike"]) {
      const error = await prepareQueueStorageSchema({
        databaseUrl: db.primaryUrl,
        schema,
        reset: true,
      }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ResetRefused)
      expect((error as Error).message).toContain(`Refusing to reset schema "${schema}"`)
    }
    expect(await snapshotCatalog(db.primaryUrl)).toEqual(before)
  })

  it("rejects invalid schema names before touching the database", async () => {
    const db = await freshDatabases("single")
    for (const schema of [
      'bad"name',
      "Tenant",
      "x".repeat(64),
      "",
      "pg_thing",
      "has space",
      "public",
      "1abc",
    ]) {
      const error = await prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema }).catch(
        (e: unknown) => e,
      )
      expect(error, schema).toBeInstanceOf(InvalidIdentifier)
    }
    expect((await snapshotCatalog(db.primaryUrl)).schemas).toEqual([])
  })
})

describe("bad input", () => {
  it("unknown sets get a did-you-mean error", async () => {
    const db = await freshDatabases("single")
    const error = await migrate({ databaseUrl: db.primaryUrl, sets: ["canonicl"] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UnknownMigrationSet)
    expect((error as Error).message).toContain('Did you mean "canonical"?')
    expect((await snapshotCatalog(db.primaryUrl)).schemas).toEqual([])
  })

  it("an unreachable database is a clear DatabaseUnreachable error", async () => {
    const error = await migrate({ databaseUrl: "postgres://nobody:secret@127.0.0.1:1/none" }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(DatabaseUnreachable)
    expect((error as Error).message).toContain("127.0.0.1:1/none")
    expect((error as Error).message).not.toContain("secret")
  })
})
