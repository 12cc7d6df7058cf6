import { job } from "@awa/runtime/Producer"
import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa, awaJson } from "./support/cli.js"
import { Alpha, deadLetter, insertJobs } from "./support/jobs.js"

interface EntryJson {
  readonly id: string
  readonly kind: string
  readonly queue: string
  readonly reason: string
  readonly attempt: number
}

interface PageJson {
  readonly items: ReadonlyArray<EntryJson>
  readonly nextCursor: string | null
}

const dlqIds = async (url: string, filter: ReadonlyArray<string> = []) =>
  (await awaJson<PageJson>(["dlq", "list", ...filter], url)).items.map((e) => e.id)

describe("awa dlq", () => {
  it("lists and shows dead-lettered jobs, pages them, and retries one back to its queue with fresh attempts", async () => {
    const db = await migratedDatabase()
    const ids = await deadLetter(db.pool, "hooks", [
      { kind: "alpha", n: 1 },
      { kind: "alpha", n: 2 },
      { kind: "beta", n: 3 },
    ])
    expect(await dlqIds(db.url)).toEqual(ids)
    const first = await awaJson<PageJson>(["dlq", "list", "--limit", "2"], db.url)
    expect(first.items.map((e) => e.id)).toEqual(ids.slice(0, 2))
    expect(first.nextCursor).toBe(ids[1])
    expect(await dlqIds(db.url, ["--limit", "2", "--cursor", first.nextCursor!])).toEqual(ids.slice(2))
    expect(await dlqIds(db.url, ["--kind", "test.beta"])).toEqual([ids[2]])

    const shown = await awa(["dlq", "get", ids[0]!, "--database-url", db.url])
    expect(shown.code, shown.stderr).toBe(ExitCode.ok)
    expect(shown.stdout).toContain(`Dead-lettered job ${ids[0]}`)
    expect(shown.stdout).toContain("alpha 1 failed for good")
    const table = await awa(["dlq", "list", "--database-url", db.url])
    expect(table.stdout).toMatch(/^id\s+kind\s+queue\s+attempts\s+failed_at\s+reason/)

    const retried = await awa(["dlq", "retry", ids[0]!, "--database-url", db.url])
    expect(retried.code, retried.stderr).toBe(ExitCode.ok)
    expect(retried.stdout).toContain(`Moved 1 job(s) from the DLQ back to their queues (job ${ids[0]})`)
    const back = await awaJson<{ state: string; attempt: number; queue: string }>(
      ["job", "get", ids[0]!],
      db.url,
    )
    expect(back).toMatchObject({ state: "available", attempt: 0, queue: "hooks" })
    expect(await dlqIds(db.url)).toEqual(ids.slice(1))
  })

  it("exits 7 for the id of a live job, saying which state it is in and which command shows it", async () => {
    const db = await migratedDatabase()
    const [id] = await insertJobs(db.pool, [job(Alpha, { n: 1 }, { queue: "mail" })])
    for (const sub of ["get", "retry", "purge"]) {
      const r = await awa(["dlq", sub, id!, "--database-url", db.url])
      expect(r.code, `${sub}: ${r.stderr}`).toBe(ExitCode.notFound)
      expect(r.stderr).toContain(
        `Job ${id} is not in the dead-letter queue: it is a job in state available (queue mail).`,
      )
      expect(r.stderr).toContain(sub === "retry" ? `awa job retry ${id}` : `awa job get ${id}`)
    }
    const gone = await awa(["dlq", "get", "424242", "--database-url", db.url])
    expect(gone.code).toBe(ExitCode.notFound)
    expect(gone.stderr).toContain("Job 424242 does not exist")
  })

  it("says plainly when a bulk retry finds nothing", async () => {
    const db = await migratedDatabase()
    const all = await awa(["dlq", "retry", "--all", "--database-url", db.url])
    expect(all.code, all.stderr).toBe(ExitCode.ok)
    expect(all.stdout).toBe("The dead-letter queue is empty; nothing changed.")
    const byQueue = await awa(["dlq", "retry", "--queue", "mail", "--database-url", db.url])
    expect(byQueue.stdout).toBe("No DLQ entries match queue mail; nothing changed.")
  })

  it("refuses bulk retry and purge without an id, a filter or --all (exit 6), and changes nothing", async () => {
    const db = await migratedDatabase()
    const ids = await deadLetter(db.pool, "hooks", [
      { kind: "alpha", n: 1 },
      { kind: "beta", n: 2 },
    ])
    for (const sub of ["retry", "purge"]) {
      const r = await awa(["dlq", sub, "--database-url", db.url])
      expect(r.code, r.stderr).toBe(ExitCode.unsafe)
      expect(r.stderr).toContain(
        `Refusing to ${sub} dead-lettered jobs without a target; nothing was changed.`,
      )
      expect(r.stderr).toContain("--all")
    }
    expect(await dlqIds(db.url)).toEqual(ids)
  })

  it("purges by kind, then by queue, then everything with --all; a missing id exits 7", async () => {
    const db = await migratedDatabase()
    const hooks = await deadLetter(db.pool, "hooks", [
      { kind: "alpha", n: 1 },
      { kind: "beta", n: 2 },
      { kind: "beta", n: 3 },
    ])
    const mail = await deadLetter(db.pool, "mail", [{ kind: "alpha", n: 4 }])
    const other = await deadLetter(db.pool, "other", [{ kind: "alpha", n: 5 }])

    const byKind = await awaJson<{ purged: number }>(
      ["dlq", "purge", "--kind", "test.beta", "--queue", "hooks"],
      db.url,
    )
    expect(byKind.purged).toBe(2)
    expect(await dlqIds(db.url)).toEqual([hooks[0], ...mail, ...other])

    const byQueue = await awa(["dlq", "purge", "--queue", "mail", "--database-url", db.url])
    expect(byQueue.code, byQueue.stderr).toBe(ExitCode.ok)
    expect(byQueue.stdout).toBe("Purged 1 DLQ entry (queue mail).")

    const missing = await awa(["dlq", "purge", "424242", "--database-url", db.url])
    expect(missing.code).toBe(ExitCode.notFound)

    const all = await awa(["dlq", "purge", "--all", "--database-url", db.url])
    expect(all.code, all.stderr).toBe(ExitCode.ok)
    expect(all.stdout).toBe("Purged 2 DLQ entries (every entry).")
    expect(await dlqIds(db.url)).toEqual([])
  })

  it.each([
    [["dlq", "purge", "12", "--all"], "either a job id or --queue / --kind / --all"],
    [["dlq", "retry", "12", "--queue", "q"], "either a job id or --queue / --kind / --all"],
    [["dlq", "purge", "--all", "--kind", "k"], "--all means every DLQ entry"],
    [["dlq", "purge", "x1"], '"x1" is not a job id'],
    [["dlq", "get"], "needs a job id"],
    [["dlq", "lis"], 'Did you mean "list"?'],
    [["dlq", "list", "--limit", "20000"], "from 1 to 10000"],
    [["dlq", "get", "9223372036854775808"], '"9223372036854775808" is not a job id'],
    [["dlq", "retry", "9223372036854775808"], '"9223372036854775808" is not a job id'],
    [["dlq", "purge", "9223372036854775808"], '"9223372036854775808" is not a job id'],
    [["dlq", "list", "--cursor", "9223372036854775808"], "a job id from 1 to 9223372036854775807"],
    [["dlq", "get", "-1"], '"-1" is not a job id'],
    [["dlq", "list", "--limit", "-1"], '--limit must be a whole number from 1 to 10000, got "-1"'],
    [["dlq", "list", "--cursor", "-5"], '--cursor must be the "next cursor"'],
  ] as const)("awa %j exits 2", async (argv, message) => {
    const r = await awa(argv, { DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing" })
    expect(r.code, r.stderr).toBe(ExitCode.usage)
    expect(r.stderr).toContain(message)
  })
})
