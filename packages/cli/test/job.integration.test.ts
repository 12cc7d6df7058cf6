import { createRequire } from "node:module"
import { job } from "@awa/runtime/Producer"
import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa, awaJson } from "./support/cli.js"
import { freshDatabases } from "./support/databases.js"
import { Alpha, Beta, deadLetter, insertJobs } from "./support/jobs.js"

interface JobJson {
  readonly id: string
  readonly kind: string
  readonly queue: string
  readonly state: string
  readonly attempt: number
  readonly errors: ReadonlyArray<{ readonly message: string }>
}

interface PageJson {
  readonly items: ReadonlyArray<JobJson>
  readonly nextCursor: string | null
}

describe("awa job list", () => {
  it("lists newest first, filters by state, queue and kind, and pages with --cursor until the last page", async () => {
    const db = await migratedDatabase()
    const ids = await insertJobs(db.pool, [
      ...Array.from({ length: 5 }, (_, n) => job(Alpha, { n }, { queue: "q1" })),
      ...Array.from({ length: 3 }, (_, n) => job(Beta, { n }, { queue: "q2" })),
      job(Alpha, { n: 99 }, { queue: "q1", delay: "1 hour" }),
    ])

    const all = await awaJson<PageJson>(["job", "list"], db.url)
    expect(all.items.map((j) => j.id)).toEqual([...ids].reverse())
    expect(all.nextCursor).toBeNull()

    const pages: Array<string> = []
    let cursor: string | null = null
    let rounds = 0
    do {
      const page: PageJson = await awaJson<PageJson>(
        ["job", "list", "--limit", "4", "--order", "asc", ...(cursor === null ? [] : ["--cursor", cursor])],
        db.url,
      )
      pages.push(...page.items.map((j) => j.id))
      cursor = page.nextCursor
      rounds++
    } while (cursor !== null && rounds < 10)
    expect(pages).toEqual(ids)
    expect(rounds).toBe(3)

    const q1Available = await awaJson<PageJson>(
      ["job", "list", "--queue", "q1", "--state", "available"],
      db.url,
    )
    expect(q1Available.items.map((j) => j.id)).toEqual(ids.slice(0, 5).reverse())
    const scheduled = await awaJson<PageJson>(["job", "list", "--state", "scheduled,cancelled"], db.url)
    expect(scheduled.items.map((j) => j.id)).toEqual([ids[8]])
    const betas = await awaJson<PageJson>(["job", "list", "--kind", "test.beta"], db.url)
    expect(betas.items.every((j) => j.kind === "test.beta" && j.queue === "q2")).toBe(true)
    expect(betas.items).toHaveLength(3)

    const table = await awa(["job", "list", "--limit", "2", "--database-url", db.url])
    expect(table.code, table.stderr).toBe(ExitCode.ok)
    expect(table.stdout).toMatch(/^id\s+state\s+kind\s+queue\s+attempt\s+prio\s+run_at\s+last error/)
    expect(table.stdout).toContain(`add --cursor ${ids[7]} for the next page`)
  })
})

describe("awa job get / retry / cancel", () => {
  it("shows a job, cancels it (recording the reason), refuses a second cancel, and retries it", async () => {
    const db = await migratedDatabase()
    const [id] = await insertJobs(db.pool, [job(Alpha, { n: 1 }, { queue: "q1", tags: ["blue"] })])

    const shown = await awa(["job", "get", id!, "--database-url", db.url])
    expect(shown.code, shown.stderr).toBe(ExitCode.ok)
    expect(shown.stdout).toContain(`Job ${id}`)
    expect(shown.stdout).toMatch(/kind\s+test\.alpha/)
    expect(shown.stdout).toMatch(/tags\s+blue/)

    const cancelled = await awaJson<JobJson>(
      ["job", "cancel", id!, "--reason", "not needed any more"],
      db.url,
    )
    expect(cancelled.state).toBe("cancelled")
    expect(cancelled.errors.at(-1)?.message).toBe("not needed any more")

    const again = await awa(["job", "cancel", id!, "--database-url", db.url])
    expect(again.code).toBe(ExitCode.conflict)
    expect(again.stderr).toContain(`Cannot cancel job ${id}: it is cancelled`)

    const retried = await awa(["job", "retry", id!, "--database-url", db.url])
    expect(retried.code, retried.stderr).toBe(ExitCode.ok)
    expect(retried.stdout).toContain(`Job ${id} is available again`)
    expect((await awaJson<JobJson>(["job", "get", id!], db.url)).state).toBe("available")

    const retryAvailable = await awa(["job", "retry", id!, "--database-url", db.url])
    expect(retryAvailable.code).toBe(ExitCode.conflict)
    expect(retryAvailable.stderr).toContain("it is available")
  })

  it("exits 7 for the id of a dead-lettered job, saying it is in the DLQ and how to reach it", async () => {
    const db = await migratedDatabase()
    const [id] = await deadLetter(db.pool, "hooks", [{ kind: "alpha", n: 1 }])
    for (const sub of ["get", "retry", "cancel"]) {
      const r = await awa(["job", sub, id!, "--database-url", db.url])
      expect(r.code, `${sub}: ${r.stderr}`).toBe(ExitCode.notFound)
      expect(r.stderr).toContain(`Job ${id} is not a live job: it is in the dead-letter queue (queue hooks`)
      expect(r.stderr).toContain(`awa dlq get ${id}`)
      expect(r.stderr).toContain(`awa dlq retry ${id}`)
      expect(r.stderr).not.toContain("does not exist")
    }
  })

  it("exits 7 for a job id that does not exist, for get, retry and cancel alike", async () => {
    const db = await migratedDatabase()
    for (const sub of ["get", "retry", "cancel"]) {
      const r = await awa(["job", sub, "987654", "--database-url", db.url])
      expect(r.code, `${sub}: ${r.stderr}`).toBe(ExitCode.notFound)
      expect(r.stderr).toContain("Job 987654 does not exist")
    }
  })
})

describe("awa job: bad input is refused with a usage error before anything reaches the database", () => {
  it.each([
    [["job", "list", "--state", "runing"], 'Unknown job state "runing". Did you mean "running"?'],
    [["job", "list", "--state", "available,complete"], 'Did you mean "completed"?'],
    [["job", "list", "--stat", "running"], 'Did you mean "--state"?'],
    [["job", "list", "--limit", "0"], "--limit must be a whole number from 1 to 10000"],
    [["job", "list", "--limit", "ten"], "--limit must be a whole number"],
    [["job", "list", "--cursor", "abc"], "--cursor must be the"],
    [["job", "list", "--cursor", "c:"], "possibly after c: or q:"],
    [["job", "list", "--cursor", "x:12"], "--cursor must be the"],
    [["job", "list", "--order", "asce"], 'Did you mean "asc"?'],
    [["job", "list", "--queue", "no spaces please"], "is not a queue name"],
    [["job", "list", "--kind", "bad kind!"], "is not a job kind"],
    [["job", "get"], "needs a job id"],
    [["job", "get", "abc"], '"abc" is not a job id'],
    [["job", "get", "1", "2"], "unexpected arguments"],
    [["job", "lst"], 'Unknown job command "lst". Did you mean "list"?'],
    [["job", "lsit"], 'Unknown job command "lsit". Did you mean "list"?'],
    [["job", "retyr", "1"], 'Did you mean "retry"?'],
    // Ids are bigints: one past the largest is a usage error, not a database error.
    [["job", "get", "9223372036854775808"], '"9223372036854775808" is not a job id'],
    [["job", "retry", "9223372036854775808"], "whole numbers from 1 to 9223372036854775807"],
    [["job", "cancel", "99999999999999999999"], '"99999999999999999999" is not a job id'],
    [["job", "list", "--cursor", "9223372036854775808"], "a job id from 1 to 9223372036854775807"],
    // Negative numbers read as numbers, not as unknown or "ambiguous" flags.
    [["job", "get", "-1"], '"-1" is not a job id'],
    [["job", "list", "--limit", "-1"], '--limit must be a whole number from 1 to 10000, got "-1"'],
    [["job", "list", "--limit=-1"], '--limit must be a whole number from 1 to 10000, got "-1"'],
    [["job", "list", "--cursor", "-5"], '--cursor must be the "next cursor" a previous page printed'],
    [["job", "cancel", "1", "--reason", "-x"], 'to pass one that starts with "-", write --reason=VALUE'],
    [["job", "cancel", "1", "--reason", ""], "--reason must not be empty"],
    [["job", "cancel", "1", "--reason", "  "], "--reason must not be empty"],
  ] as const)("awa %j exits 2", async (argv, message) => {
    const r = await awa(argv, { DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing" })
    expect(r.code, r.stderr).toBe(ExitCode.usage)
    expect(r.stderr).toContain(message)
  })

  it("needs a database URL (exit 3), a reachable database (exit 3) and the awa schema (exit 3, says run awa migrate)", async () => {
    const missing = await awa(["job", "list"])
    expect(missing.code).toBe(ExitCode.database)
    expect(missing.stderr).toContain("DATABASE_URL")
    const unreachable = await awa(["job", "list", "--database-url", "postgres://u:pw@127.0.0.1:1/db"])
    expect(unreachable.code).toBe(ExitCode.database)
    expect(unreachable.stderr).toContain("Cannot connect to the primary database at 127.0.0.1:1/db")
    const empty = await freshDatabases("single")
    const unmigrated = await awa(["job", "list"], { DATABASE_URL: empty.primaryUrl })
    expect(unmigrated.code).toBe(ExitCode.database)
    expect(unmigrated.stderr).toContain("Run `awa migrate` against it first")
  })

  it("maps every connection failure to exit 3 (TLS refused, here), for every command that connects", async () => {
    const db = await migratedDatabase()
    const url = new URL(db.url)
    url.searchParams.set("sslmode", "require")
    for (const argv of [
      ["job", "list"],
      ["job", "get", "1"],
      ["queue", "stats"],
      ["queue", "pause", "mail"],
      ["dlq", "list"],
      ["dlq", "purge", "--all"],
      ["migrate", "--status"],
    ]) {
      const r = await awa([...argv, "--database-url", url.href])
      expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(ExitCode.database)
      expect(r.stderr).toContain("Cannot connect to the primary database")
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
  })

  it("names a bad port, says when the bad URL came from DATABASE_URL, and words a missing URL for the CLI", async () => {
    for (const [port, shown] of [
      ["99999", '"99999"'],
      ["notaport", '"notaport"'],
    ]) {
      const flag = await awa(["job", "list", "--database-url", `postgres://u@127.0.0.1:${port}/db`])
      expect(flag.code, flag.stderr).toBe(ExitCode.usage)
      expect(flag.stderr).toContain(`its port ${shown} is not a number from 1 to 65535`)
      expect(flag.stderr).not.toContain("came from")
      const env = await awa(["queue", "stats"], { DATABASE_URL: `postgres://u@127.0.0.1:${port}/db` })
      expect(env.code, env.stderr).toBe(ExitCode.usage)
      expect(env.stderr).toContain(
        `its port ${shown} is not a number from 1 to 65535 (the URL came from DATABASE_URL)`,
      )
    }
    const notUrl = await awa(["job", "list"], { DATABASE_URL: "not a url" })
    expect(notUrl.stderr).toContain("it is not a URL (the URL came from DATABASE_URL)")
    const missing = await awa(["job", "list"])
    expect(missing.code).toBe(ExitCode.database)
    expect(missing.stderr).toContain("Pass --database-url")
    expect(missing.stderr).toContain("set DATABASE_URL")
    expect(missing.stderr).not.toContain("databaseUrl")
  })

  it("prints the version, help for a command through `awa help`, and the help without a command (exit 2)", async () => {
    const { version } = createRequire(import.meta.url)("../package.json") as { version: string }
    for (const flag of ["--version", "-v"]) {
      const r = await awa([flag])
      expect(r.code).toBe(ExitCode.ok)
      expect(r.stdout).toBe(version)
    }
    const helpJob = await awa(["help", "job"])
    expect(helpJob.code).toBe(ExitCode.ok)
    expect(helpJob.stdout).toContain("Usage: awa job <list|get|retry|cancel>")
    const helpList = await awa(["help", "job", "list"])
    expect(helpList.code).toBe(ExitCode.ok)
    expect(helpList.stdout).toContain("Usage: awa job list")
    const helpMigrate = await awa(["help", "migrate"])
    expect(helpMigrate.code).toBe(ExitCode.ok)
    expect(helpMigrate.stdout).toContain("Usage: awa migrate")
    const helpTypo = await awa(["help", "jbo"])
    expect(helpTypo.code).toBe(ExitCode.usage)
    expect(helpTypo.stderr).toContain('Did you mean "job"?')
    const bare = await awa([])
    expect(bare.code).toBe(ExitCode.usage)
    expect(bare.stdout).toContain("Usage: awa <command> [flags]")
    expect(bare.stdout).toContain("awa --version")
  })

  it("prints help for the group and each subcommand", async () => {
    const group = await awa(["job", "--help"])
    expect(group.code).toBe(ExitCode.ok)
    expect(group.stdout).toContain("Usage: awa job <list|get|retry|cancel>")
    const list = await awa(["job", "list", "--help"])
    expect(list.code).toBe(ExitCode.ok)
    expect(list.stdout).toContain("--cursor <value>")
    const bare = await awa(["job"])
    expect(bare.code).toBe(ExitCode.usage)
  })
})
