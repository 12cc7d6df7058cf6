import { migrationStatus } from "@awa/migrator/MigrateApi"
import { getMigrationSet } from "@awa/migrator/MigrationSet"
import { describe, expect, it } from "vitest"
import { migratedTemplate, migrationsFingerprint } from "../src/MigratedTemplate.js"
import { useAwaDatabase } from "../src/vitest/AwaTestDatabase.js"
import { useTestDatabases } from "../src/vitest/TestPostgres.js"
import { queryOnce } from "./support/sql.js"

const schemasOf = async (url: string): Promise<Array<string>> =>
  (
    await queryOnce<{ name: string }>(
      url,
      "SELECT nspname AS name FROM pg_namespace WHERE nspname IN ('awa', 'pgmq') ORDER BY 1",
    )
  ).map((row) => row.name)

describe("migratedTemplate", () => {
  it("keys templates by engine, pgmq and a fingerprint of every migration's checksum", () => {
    const fingerprint = migrationsFingerprint()
    expect(fingerprint).toMatch(/^[0-9a-f]{16}$/)
    expect(getMigrationSet("canonical").migrations.length).toBeGreaterThan(0)
    expect(migrationsFingerprint(["canonical"])).not.toBe(fingerprint)
    expect(migratedTemplate().key).toBe(`awa canonical pgmq ${fingerprint}`)
    expect(migratedTemplate({ withPgmq: false }).key).toBe(`awa canonical ${fingerprint}`)
    expect(migratedTemplate({ engine: "queue_storage", queueStorageSchema: "tenant_a" }).key).toBe(
      `awa queue_storage qs:tenant_a pgmq ${fingerprint}`,
    )
    expect(migratedTemplate({ queueStorageSchema: "awa" }).key).toBe(`awa canonical pgmq ${fingerprint}`)
    expect(migratedTemplate({ storageState: "fresh" }).key).toBe(`awa canonical pgmq fresh ${fingerprint}`)
  })
})

const storageStateOf = async (url: string) =>
  (
    await queryOnce<{
      storage_state: string
      queue_storage_schema: string | null
      changed_by: string | null
    }>(url, "SELECT storage_state, queue_storage_schema, changed_by FROM awa.runtime_state")
  )[0]

describe("migratedTemplate's storage state", () => {
  const canonical = useTestDatabases({ mode: "single", template: migratedTemplate({ withPgmq: false }) })
  const queueStorage = useTestDatabases({
    mode: "single",
    template: migratedTemplate({ withPgmq: false, engine: "queue_storage", queueStorageSchema: "tenant_st" }),
  })
  const fresh = useTestDatabases({
    mode: "single",
    template: migratedTemplate({ withPgmq: false, storageState: "fresh" }),
  })

  it("matches the engine (canonical kept, queue storage active), or is left fresh as awa migrate leaves it", async () => {
    expect(await storageStateOf(canonical.primaryUrl)).toEqual({
      storage_state: "canonical",
      queue_storage_schema: null,
      changed_by: "awa test template (canonical)",
    })
    expect(await storageStateOf(queueStorage.primaryUrl)).toEqual({
      storage_state: "active",
      queue_storage_schema: "tenant_st",
      changed_by: "awa test template (queue_storage)",
    })
    expect(await storageStateOf(fresh.primaryUrl)).toEqual({
      storage_state: "canonical",
      queue_storage_schema: null,
      changed_by: null,
    })
  })
})

describe("migratedTemplate with a custom queue-storage schema", () => {
  const dbs = useTestDatabases({
    mode: "single",
    template: migratedTemplate({ withPgmq: false, queueStorageSchema: "tenant_tpl" }),
  })

  it("prepares it as `awa storage prepare-queue-storage-schema` does, ledgered per schema", async () => {
    const status = await migrationStatus({ databaseUrl: dbs.primaryUrl })
    const queueStorage = status.filter((s) => s.set === "queue-storage")
    expect(queueStorage.map((s) => s.instance).sort()).toEqual(["awa", "tenant_tpl"])
    expect(queueStorage.every((s) => s.pending.length === 0 && s.applied === s.latest)).toBe(true)
    const schemas = await queryOnce<{ name: string }>(
      dbs.primaryUrl,
      "SELECT nspname AS name FROM pg_namespace WHERE nspname = 'tenant_tpl'",
    )
    expect(schemas).toEqual([{ name: "tenant_tpl" }])
  })
})

for (const mode of ["single", "split"] as const) {
  describe(`useAwaDatabase in ${mode} mode`, () => {
    const awa = useAwaDatabase({ mode })

    it("hands the file a database migrated like a fresh `awa migrate --with-pgmq`", async () => {
      const status = await migrationStatus({
        databaseUrl: awa.primaryUrl,
        pgmqDatabaseUrl: awa.pgmqUrl,
        withPgmq: true,
      })
      expect(status.map((s) => s.set).sort()).toEqual(["canonical", "pgmq", "queue-storage"])
      expect(
        status.every((s) => s.pending.length === 0 && s.drift.length === 0 && s.applied === s.latest),
      ).toBe(true)
      if (mode === "split") {
        expect(awa.pgmqUrl).not.toBe(awa.primaryUrl)
        expect(await schemasOf(awa.primaryUrl)).toEqual(["awa"])
        expect(await schemasOf(awa.pgmqUrl)).toEqual(["pgmq"])
      } else {
        expect(await schemasOf(awa.primaryUrl)).toEqual(["awa", "pgmq"])
      }
    })
  })
}
