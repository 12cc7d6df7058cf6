import { randomUUID } from "node:crypto"
import { describe, expect, inject, it } from "vitest"
import { dropDatabase } from "../../src/TestDatabases.js"
import { type TemplatePreparation, templateNamesFor } from "../../src/TestTemplates.js"
import { postgresAdminUrlKey } from "../../src/vitest/ProvidedPostgres.js"
import {
  acquireTestDatabases,
  createEmptyDatabases,
  testPostgresAdminUrl,
  useTestDatabases,
} from "../../src/vitest/TestPostgres.js"
import { currentDatabase, databaseExists, queryOnce } from "../support/sql.js"

const nameOf = (url: string): string => decodeURIComponent(new URL(url).pathname.slice(1))

const tablesOf = async (url: string): Promise<string[]> =>
  (
    await queryOnce<{ name: string }>(
      url,
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
  ).map((row) => row.name)

// Stands in for the migrator: a key that names the schema version, and one call filling both roles.
const migrated: TemplatePreparation = {
  key: `fixture-test ${randomUUID()}`,
  prepare: async ({ primaryUrl, pgmqUrl }) => {
    await queryOnce(primaryUrl, "CREATE TABLE jobs (id bigserial PRIMARY KEY, kind text NOT NULL)")
    await queryOnce(pgmqUrl, "CREATE TABLE pgmq_meta (queue_name text PRIMARY KEY)")
  },
}

it("uses the server the global setup provided", async () => {
  const provided = inject(postgresAdminUrlKey)
  expect(provided).toMatch(/^postgres(ql)?:\/\//)
  expect(await testPostgresAdminUrl()).toBe(provided)
})

describe("useTestDatabases (file scope)", () => {
  const db = useTestDatabases({ template: migrated })
  let readBeforeReady: unknown
  try {
    void db.primaryUrl
  } catch (error) {
    readBeforeReady = error
  }

  it("says clearly when the fixture is read while tests are being collected", () => {
    expect(readBeforeReady).toBeInstanceOf(Error)
    expect(String(readBeforeReady)).toContain("inside a test or hook")
  })

  it("hands the file a database cloned from the migrated template", async () => {
    expect(await tablesOf(db.primaryUrl)).toContain("jobs")
    await queryOnce(db.primaryUrl, "INSERT INTO jobs (kind) VALUES ('seen by the next test')")
  })

  it("keeps the same databases for every test of the file", async () => {
    expect(await queryOnce(db.primaryUrl, "SELECT kind FROM jobs")).toEqual([
      { kind: "seen by the next test" },
    ])
    expect(db.databases.primaryUrl).toBe(db.primaryUrl)
    if (db.mode === "single") expect(db.pgmqUrl).toBe(db.primaryUrl)
    else expect(db.pgmqUrl).not.toBe(db.primaryUrl)
    expect(await tablesOf(db.pgmqUrl)).toContain("pgmq_meta")
  })
})

describe("useTestDatabases (test scope, split)", () => {
  const db = useTestDatabases({ template: migrated, mode: "split", scope: "test" })
  const seen: string[] = []

  it("gives each test fresh databases: first", async () => {
    seen.push(await currentDatabase(db.primaryUrl))
    expect(db.mode).toBe("split")
    expect(await tablesOf(db.primaryUrl)).toEqual(["jobs"])
    expect(await tablesOf(db.pgmqUrl)).toEqual(["pgmq_meta"])
    await queryOnce(db.primaryUrl, "INSERT INTO jobs (kind) VALUES ('first test only')")
  })

  it("gives each test fresh databases: second", async () => {
    seen.push(await currentDatabase(db.primaryUrl))
    expect(seen[0]).not.toBe(seen[1])
    expect(await databaseExists(await testPostgresAdminUrl(), seen[0]!)).toBe(false)
    expect(await queryOnce(db.primaryUrl, "SELECT count(*)::int AS n FROM jobs")).toEqual([{ n: 0 }])
  })
})

describe.concurrent("acquireTestDatabases / createEmptyDatabases", () => {
  it("acquires databases for one test and drops them", async () => {
    const databases = await acquireTestDatabases({ template: migrated, mode: "single" })
    const name = nameOf(databases.primaryUrl)
    expect(await tablesOf(databases.primaryUrl)).toEqual(["jobs", "pgmq_meta"])
    await databases.drop()
    expect(await databaseExists(await testPostgresAdminUrl(), name)).toBe(false)
  })

  it("works with onTestFinished for cleanup", async ({ onTestFinished }) => {
    const databases = await acquireTestDatabases({ mode: "split" })
    onTestFinished(() => databases.drop())
    expect(databases.pgmqUrl).not.toBe(databases.primaryUrl)
  })

  it("creates empty databases for migration tests", async () => {
    const single = await createEmptyDatabases("single")
    const split = await createEmptyDatabases("split")
    try {
      expect(single.pgmqUrl).toBe(single.primaryUrl)
      expect(split.pgmqUrl).not.toBe(split.primaryUrl)
      for (const url of [single.primaryUrl, split.primaryUrl, split.pgmqUrl])
        expect(await tablesOf(url)).toEqual([])
    } finally {
      await Promise.all([single.drop(), split.drop()])
    }
  })
})

describe("template cleanup", () => {
  it("drops this file's templates so the shared server does not accumulate them", async ({
    onTestFinished,
  }) => {
    const adminUrl = await testPostgresAdminUrl()
    onTestFinished(async () => {
      for (const mode of ["single", "split"] as const) {
        const names = templateNamesFor(migrated.key, mode)
        await dropDatabase(adminUrl, names.primary)
        if (names.pgmq !== undefined) await dropDatabase(adminUrl, names.pgmq)
      }
    })
    expect(await databaseExists(adminUrl, templateNamesFor(migrated.key, "split").primary)).toBe(true)
  })
})
