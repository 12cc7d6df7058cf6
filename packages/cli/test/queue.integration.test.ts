import { job } from "@awa/runtime/Producer"
import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa, awaJson } from "./support/cli.js"
import { Alpha, Beta, insertJobs } from "./support/jobs.js"

interface StatsJson {
  readonly queue: string
  readonly counts: Record<string, number>
  readonly deadLettered: number
  readonly paused: boolean
  readonly dlqEnabled: boolean
}

interface SettingsJson {
  readonly queue: string
  readonly paused: boolean
  readonly pausedAt: string | null
  readonly dlqEnabled: boolean
}

describe("awa queue", () => {
  it("prints exact counts per queue and state, pauses and resumes a queue, and switches its DLQ", async () => {
    const db = await migratedDatabase()
    const ids = await insertJobs(db.pool, [
      job(Alpha, { n: 1 }, { queue: "mail" }),
      job(Alpha, { n: 2 }, { queue: "mail" }),
      job(Beta, { n: 3 }, { queue: "mail", delay: "1 hour" }),
      job(Beta, { n: 4 }, { queue: "media" }),
    ])
    expect((await awa(["job", "cancel", ids[1]!, "--database-url", db.url])).code).toBe(ExitCode.ok)

    const stats = await awaJson<Array<StatsJson>>(["queue", "stats"], db.url)
    expect(stats.map((s) => s.queue)).toEqual(["mail", "media"])
    expect(stats[0]!.counts).toMatchObject({ available: 1, scheduled: 1, cancelled: 1, running: 0 })
    expect(stats[1]!.counts).toMatchObject({ available: 1 })
    expect(stats.every((s) => !s.paused && !s.dlqEnabled && s.deadLettered === 0)).toBe(true)

    const only = await awaJson<Array<StatsJson>>(["queue", "stats", "--queue", "media"], db.url)
    expect(only.map((s) => s.queue)).toEqual(["media"])

    const paused = await awaJson<SettingsJson>(["queue", "pause", "mail"], db.url)
    expect(paused).toMatchObject({ queue: "mail", paused: true, dlqEnabled: false })
    expect(paused.pausedAt).not.toBeNull()
    const table = await awa(["queue", "stats", "--database-url", db.url])
    expect(table.code, table.stderr).toBe(ExitCode.ok)
    expect(table.stdout).toMatch(/^queue\s+scheduled\s+available\s+running\s+completed/)
    expect(table.stdout).toMatch(/^mail\s+1\s+1\s+0\s+0\s+0\s+0\s+1\s+0\s+0\s+yes\s+off$/m)
    expect(table.stdout).toMatch(/^\(total\)\s+1\s+2\s/m)

    const resumed = await awa(["queue", "resume", "mail", "--database-url", db.url])
    expect(resumed.code, resumed.stderr).toBe(ExitCode.ok)
    expect(resumed.stdout).toBe("Queue mail: running (not paused), dead-letter queue disabled.")

    expect(await awaJson<SettingsJson>(["queue", "dlq", "enable", "media"], db.url)).toMatchObject({
      queue: "media",
      dlqEnabled: true,
      paused: false,
    })
    expect(
      (await awaJson<Array<StatsJson>>(["queue", "stats", "--queue", "media"], db.url))[0]?.dlqEnabled,
    ).toBe(true)
    expect(await awaJson<SettingsJson>(["queue", "dlq", "disable", "media"], db.url)).toMatchObject({
      dlqEnabled: false,
    })
  })

  it("pauses a queue that has no jobs yet, with a note that suggests the closest known queue or lists them", async () => {
    const db = await migratedDatabase()
    const fresh = await awa(["queue", "pause", "mail", "--database-url", db.url])
    expect(fresh.code, fresh.stderr).toBe(ExitCode.ok)
    expect(fresh.stderr).toContain("Note: queue mail has no jobs, DLQ entries or settings yet")
    expect(fresh.stderr).toContain("No queue has jobs yet.")
    await insertJobs(db.pool, [job(Alpha, { n: 1 }, { queue: "media" })])

    const typo = await awa(["queue", "pause", "mial", "--json", "--database-url", db.url])
    expect(typo.code, typo.stderr).toBe(ExitCode.ok)
    expect(JSON.parse(typo.stdout)).toMatchObject({ queue: "mial", paused: true })
    expect(typo.stderr).toContain('Did you mean "mail"?')

    const other = await awa(["queue", "dlq", "enable", "reports", "--database-url", db.url])
    expect(other.code, other.stderr).toBe(ExitCode.ok)
    expect(other.stderr).toContain("Note: queue reports has no jobs")
    expect(other.stderr).toContain("Known queues: mail, media, mial.")

    const known = await awa(["queue", "resume", "media", "--database-url", db.url])
    expect(known.code, known.stderr).toBe(ExitCode.ok)
    expect(known.stderr).toBe("")
  })

  it.each([
    [["queue", "pause"], "needs a queue name"],
    [["queue", "pause", "bad name"], 'queue "bad name" is not a queue name'],
    [["queue", "resume", "a", "b"], "unexpected arguments"],
    [["queue", "dlq"], "needs enable or disable"],
    [["queue", "dlq", "enabel", "mail"], 'Did you mean "enable"?'],
    [["queue", "dlq", "enable"], "needs a queue name"],
    [["queue", "stat"], 'Did you mean "stats"?'],
    [["queue", "stats", "--jsn"], 'Did you mean "--json"?'],
  ] as const)("awa %j exits 2", async (argv, message) => {
    const r = await awa(argv, { DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing" })
    expect(r.code, r.stderr).toBe(ExitCode.usage)
    expect(r.stderr).toContain(message)
  })
})
