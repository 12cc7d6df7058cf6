import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { InvalidMigratorOptions, UnknownMigrationSet } from "@awa/model"
import { afterAll, describe, expect, it } from "vitest"
import { extractMigrationSql, migrate, migrationStatus, renderMigrationSql } from "../src/MigrateApi.js"
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

/** Applies one exported file the way `psql --single-transaction -f FILE` does (dbmate, Flyway and sqitch alike). */
const applySingleTransaction = (url: string, file: string): void => {
  const r = spawnSync(
    psql,
    ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", url, "-f", file],
    {
      encoding: "utf8",
    },
  )
  if (r.status !== 0)
    throw new Error(`psql --single-transaction -f ${file} failed (${r.status}): ${r.stderr}`)
}

/** Applies one exported file inside a BEGIN/COMMIT of its own, as a tool that wraps each file would. */
const applyWrapped = (url: string, file: string): void => {
  const r = spawnSync(psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"], {
    input: `BEGIN;\n${readFileSync(file, "utf8")}\nCOMMIT;\n`,
    encoding: "utf8",
  })
  // psql reports "WARNING: there is already a transaction in progress" when a file holds its own BEGIN.
  if (r.status !== 0 || /already a transaction in progress|no transaction in progress/.test(r.stderr))
    throw new Error(`wrapped ${file} failed (${r.status}): ${r.stderr}`)
}

/** The files of one extracted target folder, in apply (name) order. */
const filesIn = (folder: string): ReadonlyArray<string> =>
  readdirSync(folder)
    .sort()
    .map((f) => join(folder, f))

const upToDate = async (databaseUrl: string, pgmqDatabaseUrl?: string) => {
  const status = await migrationStatus({ databaseUrl, pgmqDatabaseUrl, withPgmq: true })
  expect(status.map((s) => s.set).sort()).toEqual(["canonical", "pgmq", "queue-storage"])
  for (const s of status) {
    expect(s.pending, `${s.set} pending`).toEqual([])
    expect(s.drift, `${s.set} drift`).toEqual([])
    expect(s.applied).toBe(s.latest)
  }
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

describe("exports any migration tool can apply", () => {
  it("split layout, no transaction control in the files: psql --single-transaction per file and a BEGIN/COMMIT wrapper per file both give migrate's schema, and migrate then reports it up to date", async () => {
    const viaMigrate = await freshDatabases("split")
    const viaPsql1 = await freshDatabases("split")
    const viaWrapper = await freshDatabases("split")
    await migrate({ databaseUrl: viaMigrate.primaryUrl, pgmqDatabaseUrl: viaMigrate.pgmqUrl, withPgmq: true })
    const dir = mkdtempSync(join(tmpdir(), "awa-extract-"))
    tmp.push(dir)
    extractMigrationSql(join(dir, "out"), { withPgmq: true, layout: "split" })
    expect(readdirSync(join(dir, "out")).sort()).toEqual(["pgmq", "primary"])
    for (const role of ["primary", "pgmq"] as const) {
      const files = filesIn(join(dir, "out", role))
      expect(files.filter((f) => f.endsWith("0000_awa_migrator_ledger.sql"))).toHaveLength(1)
      for (const f of files)
        expect(readFileSync(f, "utf8")).not.toMatch(/^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)\s*;/im)
      for (const f of files) {
        applySingleTransaction(role === "primary" ? viaPsql1.primaryUrl : viaPsql1.pgmqUrl, f)
        applyWrapped(role === "primary" ? viaWrapper.primaryUrl : viaWrapper.pgmqUrl, f)
      }
    }
    for (const built of [viaPsql1, viaWrapper]) {
      expect(await snapshotCatalog(built.primaryUrl)).toEqual(await snapshotCatalog(viaMigrate.primaryUrl))
      expect(await snapshotCatalog(built.pgmqUrl)).toEqual(await snapshotCatalog(viaMigrate.pgmqUrl))
      await upToDate(built.primaryUrl, built.pgmqUrl)
    }
  })

  it("single layout: one folder with one ledger bootstrap, no two identical files; psql --single-transaction per file gives migrate's schema", async () => {
    const viaMigrate = await freshDatabases("single")
    const viaFiles = await freshDatabases("single")
    await migrate({ databaseUrl: viaMigrate.primaryUrl, withPgmq: true })
    const dir = mkdtempSync(join(tmpdir(), "awa-extract-"))
    tmp.push(dir)
    extractMigrationSql(join(dir, "out"), { withPgmq: true, layout: "single" })
    expect(readdirSync(join(dir, "out"))).toEqual(["primary"])
    const files = filesIn(join(dir, "out", "primary"))
    const contents = files.map((f) => readFileSync(f, "utf8"))
    expect(new Set(contents).size).toBe(contents.length)
    expect(contents.filter((c) => c.includes("CREATE TABLE IF NOT EXISTS awa_migrator.ledger"))).toHaveLength(
      1,
    )
    expect(files.at(-1)).toMatch(/_pgmq_pgmq_v0004_pgmq_sql_api_1_13\.sql$/)
    for (const f of files) applySingleTransaction(viaFiles.primaryUrl, f)
    expect(await snapshotCatalog(viaFiles.primaryUrl)).toEqual(await snapshotCatalog(viaMigrate.primaryUrl))
    await upToDate(viaFiles.primaryUrl)
  })

  it("states the pgmq provider it assumes in every file and section, and honours the one chosen", () => {
    const [target] = renderMigrationSql({ sets: ["pgmq"], pgmqProvider: "extension", layout: "single" })
    for (const file of target!.files) expect(file.sql).toContain("-- pgmq provider: extension")
    const byName = (part: string) => target!.files.find((f) => f.fileName.includes(part))!.sql
    expect(byName("v0001_pgmq_extension")).toContain("CREATE EXTENSION IF NOT EXISTS pgmq")
    expect(byName("v0002_pgmq_sql_api")).toMatch(
      /No statements for provider=extension: this migration applies only when provider=sql/,
    )
    expect(byName("v0002_pgmq_sql_api")).not.toContain("CREATE SCHEMA pgmq")
    expect(renderSqlText(renderMigrationSql({ withPgmq: true }))).toContain("-- pgmq provider: sql")
    const withoutPgmq = renderSqlText(renderMigrationSql({}))
    expect(withoutPgmq).not.toContain("pgmq provider")
    expect(withoutPgmq).toContain("transaction style none")
  })

  it("refuses an unknown transaction style or layout with a typed error", () => {
    expect(() => renderMigrationSql({ transactionStyle: "each" as never })).toThrow(InvalidMigratorOptions)
    expect(() => renderMigrationSql({ layout: "both" as never })).toThrow(/Unknown export layout "both"/)
  })
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

  it("per-file style: the files, applied with plain psql -f in name order, give the same schema as migrate", async () => {
    const viaMigrate = await freshDatabases("single")
    const viaFiles = await freshDatabases("single")
    await migrate({ databaseUrl: viaMigrate.primaryUrl })
    const dir = mkdtempSync(join(tmpdir(), "awa-extract-"))
    tmp.push(dir)
    extractMigrationSql(join(dir, "out"), { transactionStyle: "per-file" })
    const folder = join(dir, "out", "primary")
    const files = readdirSync(folder).sort()
    expect(files[0]).toBe("0000_awa_migrator_ledger.sql")
    expect(files[1]).toMatch(/^0001_canonical_awa_v0001_/)
    for (const file of files.slice(1))
      expect(readFileSync(join(folder, file), "utf8")).toMatch(/^BEGIN;$[\s\S]*^COMMIT;$/m)
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
