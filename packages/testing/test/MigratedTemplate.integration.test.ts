import { migrationStatus } from "@awa/migrator/MigrateApi"
import { getMigrationSet } from "@awa/migrator/MigrationSet"
import { describe, expect, it } from "vitest"
import { migratedTemplate, migrationsFingerprint } from "../src/MigratedTemplate.js"
import { useAwaDatabase } from "../src/vitest/AwaTestDatabase.js"
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
