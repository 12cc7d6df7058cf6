import { randomUUID } from "node:crypto"
import { beforeAll, describe, expect, it } from "vitest"
import { TestDatabaseError } from "../src/TestDatabaseError.js"
import { dropDatabase, maxDatabaseNameLength, validateDatabaseName } from "../src/TestDatabases.js"
import {
  createPreparedTestDatabases,
  ensureTestTemplates,
  type TemplatePreparation,
  templateNamesFor,
} from "../src/TestTemplates.js"
import { testPostgresAdminUrl } from "../src/vitest/TestPostgres.js"
import { currentDatabase, databaseExists, queryOnce } from "./support/sql.js"

let adminUrl: string
beforeAll(async () => {
  adminUrl = await testPostgresAdminUrl()
})

const tablesOf = async (url: string): Promise<string[]> =>
  (
    await queryOnce<{ name: string }>(
      url,
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
  ).map((row) => row.name)

/** A preparation that records its calls and creates one table per hook, under a key unique to the test. */
const recordingPreparation = () => {
  const calls: string[] = []
  const preparation: TemplatePreparation = {
    key: `test-templates ${randomUUID()}`,
    preparePrimary: async (url) => {
      calls.push(`primary:${url}`)
      await queryOnce(url, "CREATE TABLE primary_table (id int)")
    },
    preparePgmq: async (url) => {
      calls.push(`pgmq:${url}`)
      await queryOnce(url, "CREATE TABLE pgmq_table (id int)")
    },
    prepare: async ({ mode, primaryUrl, pgmqUrl }) => {
      calls.push(`both:${mode}:${primaryUrl}:${pgmqUrl}`)
      await queryOnce(primaryUrl, "CREATE TABLE both_primary (id int)")
      if (pgmqUrl !== primaryUrl) await queryOnce(pgmqUrl, "CREATE TABLE both_pgmq (id int)")
    },
  }
  return { preparation, calls }
}

const dropTemplates = async (key: string): Promise<void> => {
  for (const mode of ["single", "split"] as const) {
    const names = templateNamesFor(key, mode)
    await dropDatabase(adminUrl, names.primary)
    if (names.pgmq !== undefined) await dropDatabase(adminUrl, names.pgmq)
  }
}

describe("templateNamesFor", () => {
  it("derives valid, readable, distinct names from keys", () => {
    const single = templateNamesFor("awa-migrations v3 sha256:abc", "single")
    const split = templateNamesFor("awa-migrations v3 sha256:abc", "split")
    expect(single.primary).toMatch(/^awa_tpl_awa_migrations_v3_sha256_abc_[0-9a-f]{12}$/)
    expect(single.pgmq).toBeUndefined()
    expect(split).toEqual({ primary: `${single.primary}_p`, pgmq: `${single.primary}_q` })
    expect(templateNamesFor("awa-migrations v4", "single").primary).not.toBe(single.primary)
    // Keys that slug alike still differ by hash.
    expect(templateNamesFor("a b", "single").primary).not.toBe(templateNamesFor("a-b", "single").primary)
    const long = templateNamesFor("Ω".repeat(300) + "x".repeat(300), "split")
    for (const name of [long.primary, long.pgmq!]) {
      expect(validateDatabaseName(name).length).toBeLessThanOrEqual(maxDatabaseNameLength)
    }
  })

  it("rejects an empty key", () => {
    expect(() => templateNamesFor("  ", "single")).toThrow(TestDatabaseError)
  })
})

describe.concurrent("ensureTestTemplates", () => {
  it("single mode: one template, hooks in order on the same database", async () => {
    const { preparation, calls } = recordingPreparation()
    try {
      const templates = await ensureTestTemplates(adminUrl, preparation, "single")
      expect(templates).toEqual({
        mode: "single",
        primaryTemplate: templateNamesFor(preparation.key, "single").primary,
        reused: false,
      })
      expect(calls).toHaveLength(3)
      const url = calls[0]!.slice("primary:".length)
      expect(calls).toEqual([`primary:${url}`, `pgmq:${url}`, `both:single:${url}:${url}`])
    } finally {
      await dropTemplates(preparation.key)
    }
  })

  it("split mode: a primary and a pgmq template, each hook on its own database", async () => {
    const { preparation, calls } = recordingPreparation()
    try {
      const templates = await ensureTestTemplates(adminUrl, preparation, "split")
      const names = templateNamesFor(preparation.key, "split")
      expect(templates).toEqual({
        mode: "split",
        primaryTemplate: names.primary,
        pgmqTemplate: names.pgmq,
        reused: false,
      })
      expect(calls.map((call) => call.split(":")[0])).toEqual(["primary", "pgmq", "both"])
      const databases = await createPreparedTestDatabases(adminUrl, { mode: "split", template: preparation })
      try {
        expect(await tablesOf(databases.primaryUrl)).toEqual(["both_primary", "primary_table"])
        expect(await tablesOf(databases.pgmqUrl)).toEqual(["both_pgmq", "pgmq_table"])
      } finally {
        await databases.drop()
      }
    } finally {
      await dropTemplates(preparation.key)
    }
  })

  it("runs the hooks once per key, however many callers ask", async () => {
    const { preparation, calls } = recordingPreparation()
    try {
      const all = await Promise.all(
        Array.from({ length: 6 }, () => ensureTestTemplates(adminUrl, preparation, "single")),
      )
      expect(new Set(all.map((templates) => templates.primaryTemplate)).size).toBe(1)
      expect(calls).toHaveLength(3)
    } finally {
      await dropTemplates(preparation.key)
    }
  })

  it("reuses templates that another process made (same key, fresh memo)", async () => {
    const { preparation, calls } = recordingPreparation()
    try {
      await ensureTestTemplates(adminUrl, preparation, "single")
      // A copy of the preparation object with the same key is what another worker process would pass; the
      // memo is keyed by key, so use another admin URL spelling of the same server to bypass it.
      const sameServer = new URL(adminUrl)
      sameServer.searchParams.set("application_name", "other_worker")
      const again = await ensureTestTemplates(sameServer.toString(), { ...preparation }, "single")
      expect(again.reused).toBe(true)
      expect(calls).toHaveLength(3)
    } finally {
      await dropTemplates(preparation.key)
    }
  })

  it("does not memoize a failure: a fixed preparation succeeds on the next call", async () => {
    const key = `failing-then-fixed ${randomUUID()}`
    let fail = true
    const preparation: TemplatePreparation = {
      key,
      preparePrimary: async (url) => {
        if (fail) throw new Error("bad migration")
        await queryOnce(url, "CREATE TABLE fixed (id int)")
      },
    }
    try {
      await expect(ensureTestTemplates(adminUrl, preparation, "single")).rejects.toMatchObject({
        _tag: "TestDatabaseError",
        reason: "TemplatePrepareFailed",
      })
      expect(await databaseExists(adminUrl, templateNamesFor(key, "single").primary)).toBe(false)
      fail = false
      const templates = await ensureTestTemplates(adminUrl, preparation, "single")
      expect(templates.reused).toBe(false)
    } finally {
      await dropTemplates(key)
    }
  })
})

describe.concurrent("createPreparedTestDatabases", () => {
  it("clones isolated copies from the prepared templates", async () => {
    const { preparation } = recordingPreparation()
    try {
      const [first, second] = await Promise.all([
        createPreparedTestDatabases(adminUrl, { mode: "single", template: preparation }),
        createPreparedTestDatabases(adminUrl, { mode: "single", template: preparation }),
      ])
      try {
        expect(await currentDatabase(first!.primaryUrl)).not.toBe(await currentDatabase(second!.primaryUrl))
        expect(await tablesOf(first!.primaryUrl)).toEqual(["both_primary", "pgmq_table", "primary_table"])
        await queryOnce(first!.primaryUrl, "CREATE TABLE only_first (id int)")
        expect(await tablesOf(second!.primaryUrl)).not.toContain("only_first")
      } finally {
        await Promise.all([first!.drop(), second!.drop()])
      }
    } finally {
      await dropTemplates(preparation.key)
    }
  })

  it("makes the templates again when they were dropped behind its back", async () => {
    const { preparation, calls } = recordingPreparation()
    try {
      const first = await createPreparedTestDatabases(adminUrl, { mode: "single", template: preparation })
      await first.drop()
      await dropTemplates(preparation.key)
      const second = await createPreparedTestDatabases(adminUrl, { mode: "single", template: preparation })
      try {
        expect(await tablesOf(second.primaryUrl)).toContain("primary_table")
        expect(calls.filter((call) => call.startsWith("primary:"))).toHaveLength(2)
      } finally {
        await second.drop()
      }
    } finally {
      await dropTemplates(preparation.key)
    }
  })

  it("gives empty databases without a template", async () => {
    const databases = await createPreparedTestDatabases(adminUrl, { mode: "split" })
    try {
      expect(await tablesOf(databases.primaryUrl)).toEqual([])
      expect(await tablesOf(databases.pgmqUrl)).toEqual([])
    } finally {
      await databases.drop()
    }
  })

  it("rejects an unknown AWA_TEST_DB_MODE", async () => {
    await expect(
      createPreparedTestDatabases(adminUrl, { env: { AWA_TEST_DB_MODE: "both" } }),
    ).rejects.toMatchObject({ reason: "InvalidMode" })
  })
})
