import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa } from "./support/cli.js"
import { freshDatabases } from "./support/databases.js"

interface DemoReport {
  readonly counts: Record<string, number>
  readonly deadLettered: number
  readonly uniqueConflicts: number
  readonly cancelledByOperator: number
  readonly enqueued: { readonly jobs: number }
}

describe("awa demo", () => {
  it("runs to completion on an empty database given by DATABASE_URL (migrating it) and prints the final counts", async () => {
    const db = await freshDatabases("single")
    const r = await awa(["demo", "--jobs", "400"], { DATABASE_URL: db.primaryUrl })
    expect(r.code, r.stderr).toBe(ExitCode.ok)
    // One version range per set, not every file name.
    expect(r.stderr).toMatch(/Schema: applied \d+ migration\(s\): canonical 1-\d+, queue-storage 1-\d+\./)
    // A fresh install: the demo starts like any runtime that follows the storage state and activates queue storage.
    expect(r.stderr).toContain(
      "Engine: queue_storage (a fresh database: activated at this start; follows the storage state).",
    )
    expect(r.stderr).toMatch(/Inserted the \d+ account syncs again: \d+ refused as UniqueConflict/)
    expect(r.stdout).toContain("Final counts per queue and state:")
    expect(r.stdout).toMatch(
      /^queue\s+completed\s+failed\s+cancelled\s+scheduled\s+available\s+running\s+retryable\s+dead-lettered$/m,
    )
    // Nothing is left pending: scheduled, available, running and retryable are all zero in the total row.
    expect(r.stdout).toMatch(/^total\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+0\s+0\s+0\s+0\s+[\d,]+$/m)
    expect(r.stdout).toContain("The jobs stay in the database.")
  })

  it("prints the report as JSON on an already migrated database: every job settled, duplicates refused", async () => {
    const db = await migratedDatabase()
    const r = await awa(["demo", "--jobs", "400", "--workers", "1", "--json", "--database-url", db.url])
    expect(r.code, r.stderr).toBe(ExitCode.ok)
    expect(r.stderr).toContain("Schema: already migrated.")
    // The harness's databases are recorded as staying canonical; the demo follows that.
    expect(r.stderr).toContain("Engine: canonical (follows the storage state).")
    const report = JSON.parse(r.stdout) as DemoReport
    const { scheduled, available, running, retryable, completed, failed, cancelled } = report.counts
    expect({ scheduled, available, running, retryable }).toEqual({
      scheduled: 0,
      available: 0,
      running: 0,
      retryable: 0,
    })
    expect(completed! + failed! + cancelled! + report.deadLettered).toBe(report.enqueued.jobs)
    expect(failed).toBeGreaterThan(0)
    expect(report.deadLettered).toBeGreaterThan(0)
    expect(cancelled).toBe(report.cancelledByOperator)
    expect(report.uniqueConflicts).toBeGreaterThan(0)
  })

  it("rejects bad flags", async () => {
    const r = await awa(["demo", "--jobs", "lots"])
    expect(r.code).toBe(ExitCode.usage)
    expect(r.stderr).toContain("--jobs must be a whole number")
  })
})
