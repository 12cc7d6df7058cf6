import { spawnSync } from "node:child_process"
import { hostname } from "node:os"
import pg from "pg"
import { beforeAll, describe, expect, it } from "vitest"
import { TestDatabaseError } from "../src/TestDatabaseError.js"
import {
  cloneDatabase,
  createDatabase,
  createTemplate,
  createTemplates,
  createTestDatabases,
  databaseUrlFor,
  dropDatabase,
  maxDatabaseNameLength,
  parseDatabaseOwner,
  randomDatabaseName,
  sweepTestDatabases,
  testDbModeFromEnv,
  validateDatabaseName,
} from "../src/TestDatabases.js"
import { testPostgresAdminUrl } from "../src/vitest/TestPostgres.js"
import { currentDatabase, databaseExists, queryOnce } from "./support/sql.js"

const nameOf = (url: string): string => decodeURIComponent(new URL(url).pathname.slice(1))

const rejectionOf = async (promise: Promise<unknown>): Promise<TestDatabaseError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(TestDatabaseError)
  return error as TestDatabaseError
}

/** A template holding one table `marker` with one row, created under a fresh name. */
const makeMarkedTemplate = async (adminUrl: string) => {
  let prepared = 0
  const template = await createTemplate(adminUrl, {
    name: randomDatabaseName("awa_tpl_test"),
    prepare: async (url) => {
      prepared += 1
      await queryOnce(
        url,
        "CREATE TABLE marker (note text NOT NULL); INSERT INTO marker VALUES ('from template')",
      )
    },
  })
  return { template, prepared: () => prepared }
}

let adminUrl: string
beforeAll(async () => {
  adminUrl = await testPostgresAdminUrl()
})

describe("database names", () => {
  it("accepts lowercase identifiers up to 63 characters", () => {
    expect(validateDatabaseName("awa_test_1")).toBe("awa_test_1")
    expect(validateDatabaseName("_x")).toBe("_x")
    expect(validateDatabaseName("a".repeat(maxDatabaseNameLength))).toHaveLength(63)
  })

  it.each([
    ["upper case", "Awa"],
    ["a quote", 'awa"; DROP DATABASE postgres; --'],
    ["a leading digit", "1awa"],
    ["a hyphen", "awa-test"],
    ["64 characters", "a".repeat(64)],
    ["nothing", ""],
  ])("rejects a name with %s", (_what, name) => {
    expect(() => validateDatabaseName(name)).toThrow(TestDatabaseError)
    try {
      validateDatabaseName(name)
    } catch (error) {
      expect((error as TestDatabaseError).reason).toBe("InvalidName")
      expect((error as TestDatabaseError).message).toContain("lowercase letters")
    }
  })

  it("makes random names that are valid and distinct", () => {
    const names = new Set(Array.from({ length: 200 }, () => randomDatabaseName()))
    expect(names.size).toBe(200)
    for (const name of names) expect(validateDatabaseName(name)).toMatch(/^awa_test_[a-z0-9]{16}$/)
  })
})

describe("AWA_TEST_DB_MODE", () => {
  it("defaults to single and accepts single and split", () => {
    expect(testDbModeFromEnv({})).toBe("single")
    expect(testDbModeFromEnv({ AWA_TEST_DB_MODE: "" })).toBe("single")
    expect(testDbModeFromEnv({ AWA_TEST_DB_MODE: "single" })).toBe("single")
    expect(testDbModeFromEnv({ AWA_TEST_DB_MODE: "split" })).toBe("split")
  })

  it("rejects an unknown mode with a clear error instead of defaulting", async () => {
    expect(() => testDbModeFromEnv({ AWA_TEST_DB_MODE: "double" })).toThrow(
      /AWA_TEST_DB_MODE="double".*"split"/,
    )
    const error = await rejectionOf(createTestDatabases(adminUrl, { env: { AWA_TEST_DB_MODE: "Split" } }))
    expect(error.reason).toBe("InvalidMode")
    const optionError = await rejectionOf(createTestDatabases(adminUrl, { mode: "triple" as never }))
    expect(optionError.reason).toBe("InvalidMode")
  })
})

describe.concurrent("createDatabase / dropDatabase", () => {
  it("creates an empty database under a random name and drops it", async () => {
    const url = await createDatabase(adminUrl)
    const name = nameOf(url)
    expect(name).toMatch(/^awa_test_/)
    expect(await currentDatabase(url)).toBe(name)
    expect(
      await queryOnce(url, "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'"),
    ).toEqual([{ n: 0 }])
    await dropDatabase(adminUrl, url)
    expect(await databaseExists(adminUrl, name)).toBe(false)
    await expect(dropDatabase(adminUrl, name)).resolves.toBeUndefined()
  })

  it("creates a database under a given name and builds URLs for it", async () => {
    const name = randomDatabaseName("awa_named")
    const url = await createDatabase(adminUrl, name)
    expect(url).toBe(databaseUrlFor(adminUrl, name))
    expect(await currentDatabase(url)).toBe(name)
    await dropDatabase(adminUrl, name)
    expect(await databaseExists(adminUrl, name)).toBe(false)
  })

  it("refuses invalid names before reaching the server", async () => {
    const error = await rejectionOf(createDatabase(adminUrl, "Robert'); DROP TABLE students;--"))
    expect(error.reason).toBe("InvalidName")
    expect((await rejectionOf(dropDatabase(adminUrl, "NOPE"))).reason).toBe("InvalidName")
  })

  it("reports a duplicate name as a failed create", async () => {
    const name = randomDatabaseName()
    await createDatabase(adminUrl, name)
    try {
      const error = await rejectionOf(createDatabase(adminUrl, name))
      expect(error.reason).toBe("DatabaseFailed")
      expect(error.message).toContain(name)
    } finally {
      await dropDatabase(adminUrl, name)
    }
  })

  it("drops a database that still has connections", async () => {
    const url = await createDatabase(adminUrl)
    const client = new pg.Client({ connectionString: url })
    client.on("error", () => {})
    await client.connect()
    try {
      await dropDatabase(adminUrl, url)
      expect(await databaseExists(adminUrl, nameOf(url))).toBe(false)
    } finally {
      await client.end().catch(() => {})
    }
  })
})

describe.concurrent("templates and clones", () => {
  it("clones are copies of the template and isolated from each other", async () => {
    const { template } = await makeMarkedTemplate(adminUrl)
    const first = await cloneDatabase(adminUrl, template.name)
    const second = await cloneDatabase(adminUrl, template.name)
    try {
      expect(first).not.toBe(second)
      await queryOnce(first, "INSERT INTO marker VALUES ('only in first')")
      await queryOnce(second, "DROP TABLE marker; CREATE TABLE only_in_second (id int)")
      expect(await queryOnce(first, "SELECT note FROM marker ORDER BY note")).toEqual([
        { note: "from template" },
        { note: "only in first" },
      ])
      expect(await queryOnce(first, "SELECT to_regclass('only_in_second') AS t")).toEqual([{ t: null }])
      // The template itself is untouched: a new clone sees only the template's row.
      const third = await cloneDatabase(adminUrl, template.name)
      expect(await queryOnce(third, "SELECT note FROM marker")).toEqual([{ note: "from template" }])
      await dropDatabase(adminUrl, third)
    } finally {
      await Promise.all([dropDatabase(adminUrl, first), dropDatabase(adminUrl, second)])
      await dropDatabase(adminUrl, template.name)
    }
  })

  it("marks a prepared template as such and refuses connections to it", async () => {
    const { template } = await makeMarkedTemplate(adminUrl)
    try {
      const [row] = await queryOnce(
        adminUrl,
        "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1",
        [template.name],
      )
      expect(row).toEqual({ datistemplate: true, datallowconn: false })
      await expect(queryOnce(databaseUrlFor(adminUrl, template.name), "SELECT 1")).rejects.toThrow(
        /not currently accepting connections/,
      )
    } finally {
      await dropDatabase(adminUrl, template.name)
      expect(await databaseExists(adminUrl, template.name)).toBe(false)
    }
  })

  it("reuses a complete template instead of preparing it again", async () => {
    const { template, prepared } = await makeMarkedTemplate(adminUrl)
    try {
      expect(template.reused).toBe(false)
      let preparedAgain = false
      const again = await createTemplate(adminUrl, {
        name: template.name,
        prepare: async () => {
          preparedAgain = true
        },
      })
      expect(again).toEqual({ name: template.name, reused: true })
      expect(preparedAgain).toBe(false)
      expect(prepared()).toBe(1)
    } finally {
      await dropDatabase(adminUrl, template.name)
    }
  })

  it("prepares a template exactly once when many callers race for it", async () => {
    const name = randomDatabaseName("awa_tpl_race")
    let prepared = 0
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        createTemplate(adminUrl, {
          name,
          prepare: async (url) => {
            prepared += 1
            await queryOnce(url, "CREATE TABLE raced (id int)")
          },
        }),
      ),
    )
    try {
      expect(prepared).toBe(1)
      expect(results.filter((result) => !result.reused)).toHaveLength(1)
      expect(results.every((result) => result.name === name)).toBe(true)
    } finally {
      await dropDatabase(adminUrl, name)
    }
  })

  it("rebuilds a template whose earlier preparation never completed", async () => {
    const name = randomDatabaseName("awa_tpl_partial")
    // What a process killed mid-preparation leaves behind: the database, not marked as a template.
    await createDatabase(adminUrl, name)
    await queryOnce(databaseUrlFor(adminUrl, name), "CREATE TABLE leftover (id int)")
    try {
      const template = await createTemplate(adminUrl, {
        name,
        prepare: (url) => queryOnce(url, "CREATE TABLE complete (id int)").then(() => undefined),
      })
      expect(template.reused).toBe(false)
      const clone = await cloneDatabase(adminUrl, name)
      expect(
        await queryOnce(
          clone,
          "SELECT to_regclass('leftover')::text AS leftover, to_regclass('complete')::text AS complete",
        ),
      ).toEqual([{ leftover: null, complete: "complete" }])
      await dropDatabase(adminUrl, clone)
    } finally {
      await dropDatabase(adminUrl, name)
    }
  })

  it("drops a template whose preparation fails and reports the cause", async () => {
    const name = randomDatabaseName("awa_tpl_fail")
    const cause = new Error("migration 0003 failed")
    const error = await rejectionOf(
      createTemplate(adminUrl, {
        name,
        prepare: async () => {
          throw cause
        },
      }),
    )
    expect(error.reason).toBe("TemplatePrepareFailed")
    expect(error.message).toContain(name)
    expect(error.message).toContain("migration 0003 failed")
    expect(error.cause).toBe(cause)
    expect(await databaseExists(adminUrl, name)).toBe(false)
  })

  it("serves many concurrent clones of one template", async () => {
    const { template } = await makeMarkedTemplate(adminUrl)
    const clones = await Promise.all(Array.from({ length: 12 }, () => cloneDatabase(adminUrl, template.name)))
    try {
      expect(new Set(clones).size).toBe(12)
      const notes = await Promise.all(clones.map((url) => queryOnce(url, "SELECT note FROM marker")))
      for (const rows of notes) expect(rows).toEqual([{ note: "from template" }])
    } finally {
      await Promise.all(clones.map((url) => dropDatabase(adminUrl, url)))
      await dropDatabase(adminUrl, template.name)
    }
  })

  it("waits for a template that another session holds open, then clones it", async () => {
    // A plain database used as a template: nothing stops a connection to it, unlike createTemplate's.
    const sourceUrl = await createDatabase(adminUrl)
    await queryOnce(sourceUrl, "CREATE TABLE held (id int)")
    const holder = new pg.Client({ connectionString: sourceUrl })
    holder.on("error", () => {})
    await holder.connect()
    // Postgres itself waits up to 5 s for the template's sessions before failing with 55006; keep the
    // session open past that so the retry path is what succeeds.
    const released = new Promise<void>((resolve) =>
      setTimeout(() => holder.end().then(resolve, resolve), 5_500),
    )
    try {
      const clone = await cloneDatabase(adminUrl, nameOf(sourceUrl))
      expect(await queryOnce(clone, "SELECT to_regclass('held')::text AS held")).toEqual([{ held: "held" }])
      await dropDatabase(adminUrl, clone)
    } finally {
      await released
      await dropDatabase(adminUrl, sourceUrl)
    }
  })

  it("reports a missing template", async () => {
    const error = await rejectionOf(cloneDatabase(adminUrl, randomDatabaseName("awa_missing")))
    expect(error.reason).toBe("TemplateNotFound")
    expect(error.message).toContain("createTemplate")
  })

  it("prepares several templates together", async () => {
    const names = [randomDatabaseName("awa_tpl_a"), randomDatabaseName("awa_tpl_b")]
    let seen: ReadonlyArray<string> = []
    const templates = await createTemplates(adminUrl, {
      names,
      prepare: async (urls) => {
        seen = urls
        await queryOnce(urls[0]!, "CREATE TABLE in_a (id int)")
        await queryOnce(urls[1]!, "CREATE TABLE in_b (id int)")
      },
    })
    try {
      expect(templates).toEqual(names.map((name) => ({ name, reused: false })))
      expect(seen.map(nameOf)).toEqual(names)
      const again = await createTemplates(adminUrl, { names, prepare: async () => {} })
      expect(again.every((template) => template.reused)).toBe(true)
    } finally {
      await Promise.all(names.map((name) => dropDatabase(adminUrl, name)))
    }
  })
})

describe.concurrent("createTestDatabases", () => {
  it("single mode gives one database serving both roles", async () => {
    const databases = await createTestDatabases(adminUrl, { mode: "single" })
    try {
      expect(databases.mode).toBe("single")
      expect(databases.pgmqUrl).toBe(databases.primaryUrl)
      expect(await currentDatabase(databases.primaryUrl)).toBe(nameOf(databases.primaryUrl))
    } finally {
      await databases.drop()
    }
    expect(await databaseExists(adminUrl, nameOf(databases.primaryUrl))).toBe(false)
  })

  it("split mode gives two distinct databases, both dropped by drop()", async () => {
    const databases = await createTestDatabases(adminUrl, { mode: "split" })
    const primary = await currentDatabase(databases.primaryUrl)
    const pgmq = await currentDatabase(databases.pgmqUrl)
    expect(databases.mode).toBe("split")
    expect(primary).not.toBe(pgmq)
    await queryOnce(databases.pgmqUrl, "CREATE TABLE only_pgmq (id int)")
    expect(await queryOnce(databases.primaryUrl, "SELECT to_regclass('only_pgmq') AS t")).toEqual([
      { t: null },
    ])
    await databases.drop()
    await databases.drop()
    expect(await databaseExists(adminUrl, primary)).toBe(false)
    expect(await databaseExists(adminUrl, pgmq)).toBe(false)
  })

  it("clones each role from its own template", async () => {
    const primaryTemplate = await createTemplate(adminUrl, {
      name: randomDatabaseName("awa_tpl_primary"),
      prepare: (url) => queryOnce(url, "CREATE TABLE jobs (id int)").then(() => undefined),
    })
    const pgmqTemplate = await createTemplate(adminUrl, {
      name: randomDatabaseName("awa_tpl_pgmq"),
      prepare: (url) => queryOnce(url, "CREATE TABLE queues (id int)").then(() => undefined),
    })
    const databases = await createTestDatabases(adminUrl, {
      mode: "split",
      primaryTemplate: primaryTemplate.name,
      pgmqTemplate: pgmqTemplate.name,
    })
    try {
      const tables = (url: string) =>
        queryOnce(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
      expect(await tables(databases.primaryUrl)).toEqual([{ tablename: "jobs" }])
      expect(await tables(databases.pgmqUrl)).toEqual([{ tablename: "queues" }])
    } finally {
      await databases.drop()
      await dropDatabase(adminUrl, primaryTemplate.name)
      await dropDatabase(adminUrl, pgmqTemplate.name)
    }
  })

  it("takes its default mode from AWA_TEST_DB_MODE", async () => {
    const databases = await createTestDatabases(adminUrl, { env: { AWA_TEST_DB_MODE: "split" } })
    try {
      expect(databases.mode).toBe("split")
      expect(databases.pgmqUrl).not.toBe(databases.primaryUrl)
    } finally {
      await databases.drop()
    }
  })
})

describe("sweeping databases left behind by killed runs", () => {
  /** The pid of a real process that has exited: what a killed run's test worker leaves in its records. */
  const deadPid = (): number => {
    const child = spawnSync(process.execPath, ["-e", "process.kill(process.pid, 'SIGKILL')"])
    expect(child.signal).toBe("SIGKILL")
    return child.pid!
  }
  const setOwner = (
    adminUrl: string,
    name: string,
    owner: { host: string; pid: number; created: Date } | null,
  ) =>
    queryOnce(
      adminUrl,
      `COMMENT ON DATABASE ${pg.escapeIdentifier(name)} IS ${
        owner === null
          ? "NULL"
          : pg.escapeLiteral(
              `@awa/testing ${JSON.stringify({ ...owner, created: owner.created.toISOString() })}`,
            )
      }`,
    )
  const ownerOf = async (adminUrl: string, name: string) =>
    parseDatabaseOwner(
      (
        await queryOnce<{ comment: string | null }>(
          adminUrl,
          "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
          [name],
        )
      )[0]?.comment,
    )

  it("records this process as the owner of the databases it makes", async () => {
    const adminUrl = await testPostgresAdminUrl()
    const url = await createDatabase(adminUrl)
    try {
      expect(await ownerOf(adminUrl, nameOf(url))).toMatchObject({ host: hostname(), pid: process.pid })
    } finally {
      await dropDatabase(adminUrl, url)
    }
  })

  it("drops test databases whose owning process on this host is gone, and nothing else", async () => {
    const adminUrl = await testPostgresAdminUrl()
    const dead = deadPid()
    const [orphan, live, foreign, unowned] = await Promise.all(
      [1, 2, 3, 4].map(async () => nameOf(await createDatabase(adminUrl))),
    )
    try {
      const created = new Date()
      await setOwner(adminUrl, orphan!, { host: hostname(), pid: dead, created })
      await setOwner(adminUrl, foreign!, { host: "another-host", pid: dead, created })
      await setOwner(adminUrl, unowned!, null)
      const { dropped } = await sweepTestDatabases(adminUrl)
      expect(dropped).toContain(orphan)
      for (const kept of [live, foreign, unowned]) expect(dropped).not.toContain(kept)
      expect(await databaseExists(adminUrl, orphan!)).toBe(false)
      for (const kept of [live!, foreign!, unowned!]) expect(await databaseExists(adminUrl, kept)).toBe(true)
    } finally {
      for (const name of [orphan!, live!, foreign!, unowned!]) await dropDatabase(adminUrl, name)
    }
  })

  it("drops an interrupted template of a gone process, and a complete one only when old and not kept", async () => {
    const adminUrl = await testPostgresAdminUrl()
    const dead = deadPid()
    const names = Array.from({ length: 4 }, () => randomDatabaseName("awa_tpl_sweep"))
    const [interrupted, fresh, stale, kept] = names
    await createTemplates(adminUrl, { names: [fresh!, stale!, kept!], prepare: async () => {} })
    await createDatabase(adminUrl, interrupted)
    try {
      const old = new Date(Date.now() - 48 * 3_600_000)
      await setOwner(adminUrl, interrupted!, { host: hostname(), pid: dead, created: new Date() })
      await setOwner(adminUrl, fresh!, { host: hostname(), pid: dead, created: new Date() })
      await setOwner(adminUrl, stale!, { host: hostname(), pid: dead, created: old })
      await setOwner(adminUrl, kept!, { host: hostname(), pid: dead, created: old })
      const { dropped } = await sweepTestDatabases(adminUrl, { keepTemplates: [kept!] })
      expect(names.filter((n) => dropped.includes(n))).toEqual([interrupted, stale])
      expect(await databaseExists(adminUrl, fresh!)).toBe(true)
      expect(await databaseExists(adminUrl, kept!)).toBe(true)
    } finally {
      for (const name of names) await dropDatabase(adminUrl, name)
    }
  })
})
