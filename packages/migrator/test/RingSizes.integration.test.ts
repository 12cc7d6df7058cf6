// Ring sizes are template parameters of the queue-storage set: integers validated against their range and
// rendered as literals, fixed when a schema is installed (recorded in its ledger rows, so later runs render
// the same SQL and see no drift), refused with a typed error when a run asks for other sizes, and reproduced
// exactly by --sql.
import { spawnSync } from "node:child_process"
import {
  InstalledParametersDiffer,
  InvalidMigratorOptions,
  InvalidTemplateParameter,
  MigrationDrift,
} from "@awa/model"
import { describe, expect, it } from "vitest"
import { migrate, migrationStatus, prepareQueueStorageSchema, renderMigrationSql } from "../src/MigrateApi.js"
import { getMigrationSet, renderTemplate, tablesCreatedBy } from "../src/MigrationSet.js"
import { renderSqlText, targetMarker } from "../src/SqlScript.js"
import { snapshotCatalog, withClient } from "./support/catalog.js"
import { freshDatabases } from "./support/databases.js"

/** Partitions of each ring table in `schema`, with their bounds, e.g. `ready_entries_1 FOR VALUES IN ('1')`. */
const partitions = (url: string, schema: string) =>
  withClient(url, async (c) =>
    (
      await c.query<{ v: string }>(
        `SELECT p.relname || ' <- ' || ch.relname || ' ' || pg_get_expr(ch.relpartbound, ch.oid) AS v
         FROM pg_inherits i JOIN pg_class ch ON ch.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
         JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = $1 AND ch.relkind IN ('r', 'p') ORDER BY 1`,
        [schema],
      )
    ).rows.map((r) => r.v),
  )

const expectedPartitions = (queueSlots: number, claimSlots: number) =>
  [
    ...["ready_entries", "ready_tombstones", "done_entries", "completion_batches", "closures"].flatMap((t) =>
      Array.from({ length: queueSlots }, (_, s) => `${t} <- ${t}_${s} FOR VALUES IN ('${s}')`),
    ),
    ...Array.from(
      { length: claimSlots },
      (_, s) => `claim_batches <- claim_batches_${s} FOR VALUES IN ('${s}')`,
    ),
  ].sort()

const meta = (url: string, schema: string) =>
  withClient(url, async (c) =>
    Object.fromEntries(
      (
        await c.query<{ key: string; value: unknown }>(
          `SELECT key, value FROM "${schema}".queue_storage_meta WHERE key LIKE '%ring_slots' ORDER BY 1`,
        )
      ).rows.map((r) => [r.key, r.value]),
    ),
  )

const tablesIn = (url: string, schema: string) =>
  withClient(url, async (c) =>
    (
      await c.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`,
        [schema],
      )
    ).rows.map((r) => r.name),
  )

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (e: unknown) => e,
  )

describe("queue-storage ring sizes", () => {
  it("installs exactly the partitions asked for, records the sizes, and later runs keep them without drift", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl, queueRingSlots: 2, claimRingSlots: 3 })
    expect(await partitions(db.primaryUrl, "awa")).toEqual(expectedPartitions(2, 3))
    expect(await meta(db.primaryUrl, "awa")).toEqual({ claim_ring_slots: 3, queue_ring_slots: 2 })
    // tablesCreatedBy knows the partitions for the same parameters; every queue-storage table is there.
    const created = tablesCreatedBy("queue-storage", { queue_ring_slots: "2", claim_ring_slots: "3" })
    expect((await tablesIn(db.primaryUrl, "awa")).filter((t) => created.includes(t))).toEqual(
      [...created].sort(),
    )
    expect(created).toContain("closures_1")
    expect(created).not.toContain("closures_2")
    expect(created).toContain("claim_batches_2")
    // The ring ledgers accept exactly the slots that exist.
    await withClient(db.primaryUrl, async (c) => {
      await expect(
        c.query("INSERT INTO awa.queue_ring_rotations (generation, slot) VALUES (99, 2)"),
      ).rejects.toThrow(/check constraint/)
      await expect(
        c.query("INSERT INTO awa.claim_ring_rotations (generation, slot) VALUES (99, 3)"),
      ).rejects.toThrow(/check constraint/)
    })

    const ledgerParams = await withClient(
      db.primaryUrl,
      async (c) =>
        (
          await c.query<{ params: Record<string, string> }>(
            "SELECT DISTINCT params FROM awa_migrator.ledger WHERE migration_set = 'queue-storage'",
          )
        ).rows,
    )
    expect(ledgerParams).toEqual([
      { params: { schema: "awa", queue_ring_slots: "2", claim_ring_slots: "3" } },
    ])

    // Without sizes, or with the installed ones, later runs change nothing and report no drift.
    const before = await snapshotCatalog(db.primaryUrl)
    expect((await migrate({ databaseUrl: db.primaryUrl })).applied).toEqual([])
    expect(
      (await migrate({ databaseUrl: db.primaryUrl, queueRingSlots: 2, claimRingSlots: 3 })).applied,
    ).toEqual([])
    for (const s of await migrationStatus({ databaseUrl: db.primaryUrl })) {
      expect(s.drift).toEqual([])
      if (s.set === "queue-storage") expect(s.params).toMatchObject({ queue_ring_slots: "2" })
    }

    // Other sizes are refused, naming the installed ones, and nothing changes.
    const error = await rejection(migrate({ databaseUrl: db.primaryUrl, queueRingSlots: 16 }))
    expect(error).toBeInstanceOf(InstalledParametersDiffer)
    expect(error).toMatchObject({
      instance: "awa",
      installed: { queue_ring_slots: "2" },
      requested: { queue_ring_slots: "16" },
    })
    expect((error as Error).message).toMatch(
      /queue-storage\/awa on the primary database was installed with queue_ring_slots=2, but this run asks for queue_ring_slots=16/,
    )
    expect((error as Error).message).toMatch(/run again without them/)
    expect((error as Error).message).toMatch(/prepare a custom schema/)
    expect(await snapshotCatalog(db.primaryUrl)).toEqual(before)
  })

  it("a custom schema keeps its own sizes: migrate upgrades it as installed, prepare refuses other sizes, --reset re-creates it with new ones", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl })
    await prepareQueueStorageSchema({
      databaseUrl: db.primaryUrl,
      schema: "tenant_small",
      queueRingSlots: 3,
      claimRingSlots: 2,
    })
    expect(await partitions(db.primaryUrl, "tenant_small")).toEqual(expectedPartitions(3, 2))
    expect(await partitions(db.primaryUrl, "awa")).toEqual(expectedPartitions(16, 8))
    // migrate's sizes are for schema awa; the custom schema is upgraded with its recorded sizes.
    expect((await migrate({ databaseUrl: db.primaryUrl, queueRingSlots: 16 })).applied).toEqual([])
    expect(
      (await prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "tenant_small" })).applied,
    ).toEqual([])
    const error = await rejection(
      prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "tenant_small", claimRingSlots: 4 }),
    )
    expect(error).toBeInstanceOf(InstalledParametersDiffer)
    expect((error as Error).message).toMatch(
      /installed with claim_ring_slots=2, but this run asks for claim_ring_slots=4/,
    )
    expect((error as Error).message).toMatch(/--schema tenant_small --reset/)

    await prepareQueueStorageSchema({
      databaseUrl: db.primaryUrl,
      schema: "tenant_small",
      reset: true,
      queueRingSlots: 4,
      claimRingSlots: 4,
    })
    expect(await partitions(db.primaryUrl, "tenant_small")).toEqual(expectedPartitions(4, 4))
    for (const s of await migrationStatus({ databaseUrl: db.primaryUrl })) expect(s.drift).toEqual([])
  })

  it("a ledger whose recorded sizes no longer match the installed SQL is drift, not silently re-rendered", async () => {
    const db = await freshDatabases("single")
    await migrate({ databaseUrl: db.primaryUrl, queueRingSlots: 4 })
    // Someone edits the recorded parameters: the rendered SQL for them no longer matches the checksums.
    await withClient(db.primaryUrl, (c) =>
      c.query(
        `UPDATE awa_migrator.ledger SET params = params || '{"queue_ring_slots": "5"}' WHERE migration_set = 'queue-storage'`,
      ),
    )
    expect(await rejection(migrate({ databaseUrl: db.primaryUrl }))).toBeInstanceOf(MigrationDrift)
  })

  it("bad sizes are typed errors before any database is touched", async () => {
    const db = await freshDatabases("single")
    for (const [value, reason] of [
      [1, /outside 2\.\.64/],
      [65, /outside 2\.\.64/],
      [0, /outside 2\.\.64/],
      [2.5, /not a whole number/],
      [-4, /not a whole number/],
      [Number.NaN, /not a whole number/],
      [1e21, /not a whole number/],
    ] as const) {
      for (const call of [
        () => migrate({ databaseUrl: db.primaryUrl, queueRingSlots: value }),
        () => migrate({ databaseUrl: db.primaryUrl, claimRingSlots: value }),
        () => prepareQueueStorageSchema({ databaseUrl: db.primaryUrl, schema: "t", queueRingSlots: value }),
      ]) {
        const error = await rejection(call())
        expect(error, String(value)).toBeInstanceOf(InvalidTemplateParameter)
        expect((error as Error).message).toMatch(reason)
        expect((error as Error).message).toMatch(/from 2 to 64; nothing was changed/)
      }
      expect(() => renderMigrationSql({ queueRingSlots: value })).toThrow(InvalidTemplateParameter)
    }
    const message = ((await rejection(migrate({ databaseUrl: db.primaryUrl, claimRingSlots: 1 }))) as Error)
      .message
    expect(message).toBe(
      'Invalid claim_ring_slots "1" for the queue-storage set: it is outside 2..64. Give --claim-ring-slots (claimRingSlots) a whole number from 2 to 64; nothing was changed.',
    )
    // Sizes without the queue-storage set are a contradiction, not silently ignored.
    expect(
      await rejection(migrate({ databaseUrl: db.primaryUrl, sets: ["canonical"], queueRingSlots: 4 })),
    ).toBeInstanceOf(InvalidMigratorOptions)
    expect((await snapshotCatalog(db.primaryUrl)).schemas).toEqual([])
  })

  it("integers are rendered as literals, never as identifiers, and the renderer refuses anything else", () => {
    const specs = getMigrationSet("queue-storage").params
    expect(
      renderTemplate(
        "SELECT {{queue_ring_slots}} FROM {{schema}}.t",
        { queue_ring_slots: "7", schema: "s" },
        specs,
      ),
    ).toBe('SELECT 7 FROM "s".t')
    expect(() =>
      renderTemplate("SELECT {{queue_ring_slots}}", { queue_ring_slots: "7; DROP TABLE x" }, specs),
    ).toThrow(InvalidTemplateParameter)
    expect(() => renderTemplate("SELECT {{queue_ring_slots}}", { queue_ring_slots: "99" }, specs)).toThrow(
      InvalidTemplateParameter,
    )
    const [primary] = renderMigrationSql({ queueRingSlots: 3, claimRingSlots: 2, layout: "single" })
    const rings = primary!.files.find((f) => f.fileName.includes("queue_storage_awa_v0002"))!.sql
    expect(rings).toContain("queue ring (3 slots) and claim ring (2 slots)")
    expect(rings).toContain(`'{"schema":"awa","queue_ring_slots":"3","claim_ring_slots":"2"}'::jsonb`)
  })

  it("--sql with sizes, applied with psql, gives exactly the schema migrate gives with them, and migrate then has nothing to do", async () => {
    const psql = process.env.PSQL ?? "psql"
    const viaMigrate = await freshDatabases("single")
    const viaSql = await freshDatabases("single")
    await migrate({ databaseUrl: viaMigrate.primaryUrl, queueRingSlots: 2, claimRingSlots: 2 })
    const text = renderSqlText(renderMigrationSql({ queueRingSlots: 2, claimRingSlots: 2, layout: "single" }))
    expect(text.startsWith(targetMarker("primary"))).toBe(true)
    const applied = spawnSync(
      psql,
      ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", viaSql.primaryUrl, "-f", "-"],
      {
        input: text,
        encoding: "utf8",
      },
    )
    if (applied.error !== undefined) {
      // Without psql the same text goes through pg's simple protocol.
      await withClient(viaSql.primaryUrl, (c) => c.query(text))
    } else expect(applied.status, applied.stderr).toBe(0)
    expect(await snapshotCatalog(viaSql.primaryUrl)).toEqual(await snapshotCatalog(viaMigrate.primaryUrl))
    expect(await partitions(viaSql.primaryUrl, "awa")).toEqual(expectedPartitions(2, 2))
    expect(await partitions(viaSql.primaryUrl, "awa")).toEqual(await partitions(viaMigrate.primaryUrl, "awa"))
    expect((await migrate({ databaseUrl: viaSql.primaryUrl })).applied).toEqual([])
    // Asking migrate for other sizes than the SQL installed is refused like any installed schema.
    expect(await rejection(migrate({ databaseUrl: viaSql.primaryUrl, claimRingSlots: 8 }))).toBeInstanceOf(
      InstalledParametersDiffer,
    )
  })
})
