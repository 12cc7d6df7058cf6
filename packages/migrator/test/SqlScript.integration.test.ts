import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { InvalidMigratorOptions, UnknownMigrationSet } from "@awa/model"
import { afterAll, describe, expect, it } from "vitest"
import { extractMigrationSql, migrate, renderMigrationSql } from "../src/MigrateApi.js"
import { renderSqlText, targetMarker } from "../src/SqlScript.js"
import { snapshotCatalog, withClient } from "./support/catalog.js"
import { freshDatabases } from "./support/databases.js"

const psql = process.env.PSQL ?? "psql"
const psqlAvailable = spawnSync(psql, ["--version"], { stdio: "ignore" }).status === 0
if (!psqlAvailable && process.env.CI)
  throw new Error(`psql is required in CI (looked for "${psql}"); .ci/run installs postgresql-client.`)

/** Applies a script the way an external tool would: psql with ON_ERROR_STOP (or pg's simple protocol without psql). */
const applyScript = async (url: string, sql: string): Promise<void> => {
  if (psqlAvailable) {
    const result = spawnSync(psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"], {
      input: sql,
      encoding: "utf8",
    })
    if (result.status !== 0) throw new Error(`psql failed (${result.status}): ${result.stderr}`)
    return
  }
  await withClient(url, (c) => c.query(sql))
}

const sectionsOf = (text: string) => {
  const primary = targetMarker("primary")
  const pgmq = targetMarker("pgmq")
  const pgmqAt = text.indexOf(pgmq)
  return {
    primary: text.slice(text.indexOf(primary), pgmqAt === -1 ? undefined : pgmqAt),
    pgmq: pgmqAt === -1 ? "" : text.slice(pgmqAt),
  }
}

const tmp: Array<string> = []
afterAll(() => {
  for (const dir of tmp) rmSync(dir, { recursive: true, force: true })
})

describe("--sql and --extract-to", () => {
  it("the SQL from --sql, applied with psql to empty databases, gives the same schema as migrate (split mode)", async () => {
    const viaMigrate = await freshDatabases("split")
    const viaSql = await freshDatabases("split")
    await migrate({ databaseUrl: viaMigrate.primaryUrl, pgmqDatabaseUrl: viaMigrate.pgmqUrl, withPgmq: true })
    const text = renderSqlText(renderMigrationSql({ withPgmq: true }))
    const { primary, pgmq } = sectionsOf(text)
    expect(primary).toContain("INSERT INTO awa_migrator.ledger")
    expect(pgmq).toContain("pgmq")
    await applyScript(viaSql.primaryUrl, primary)
    await applyScript(viaSql.pgmqUrl, pgmq)
    expect(await snapshotCatalog(viaSql.primaryUrl)).toEqual(await snapshotCatalog(viaMigrate.primaryUrl))
    expect(await snapshotCatalog(viaSql.pgmqUrl)).toEqual(await snapshotCatalog(viaMigrate.pgmqUrl))
    // The databases built from SQL are then up to date for migrate itself.
    const report = await migrate({
      databaseUrl: viaSql.primaryUrl,
      pgmqDatabaseUrl: viaSql.pgmqUrl,
      withPgmq: true,
    })
    expect(report.applied).toEqual([])
  })

  it("the files from --extract-to, applied in name order, give the same schema as migrate", async () => {
    const viaMigrate = await freshDatabases("single")
    const viaFiles = await freshDatabases("single")
    await migrate({ databaseUrl: viaMigrate.primaryUrl })
    const dir = mkdtempSync(join(tmpdir(), "awa-extract-"))
    tmp.push(dir)
    const written = extractMigrationSql(join(dir, "out"))
    expect(written.length).toBeGreaterThan(2)
    const folder = join(dir, "out", "primary")
    const files = readdirSync(folder).sort()
    expect(files[0]).toBe("0000_awa_migrator_ledger.sql")
    expect(files[1]).toMatch(/^0001_canonical_awa_v0001_/)
    for (const file of files) await applyScript(viaFiles.primaryUrl, readFileSync(join(folder, file), "utf8"))
    expect(await snapshotCatalog(viaFiles.primaryUrl)).toEqual(await snapshotCatalog(viaMigrate.primaryUrl))
  })

  it("refuses to extract into a folder that already has files", () => {
    const dir = mkdtempSync(join(tmpdir(), "awa-extract-"))
    tmp.push(dir)
    extractMigrationSql(dir)
    expect(() => extractMigrationSql(dir)).toThrow(InvalidMigratorOptions)
  })

  it("rejects unknown sets without a database", () => {
    expect(() => renderMigrationSql({ sets: ["queue_storage"] })).toThrow(UnknownMigrationSet)
    expect(() => renderMigrationSql({ sets: ["queue_storage"] })).toThrow(/Did you mean "queue-storage"/)
  })
})
