import { toExecutor } from "@awa/runtime/PgExecutor"
import { makeQueueStorageEngine } from "@awa/runtime/QueueStorageEngine"
import pg from "pg"
import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { awa } from "./support/cli.js"
import { freshDatabases } from "./support/databases.js"

const counts = async (pool: pg.Pool, schema: string) =>
  (
    await pool.query(
      `SELECT queue, state, sum(count)::int AS n FROM "${schema}".queue_terminal_live_counts GROUP BY 1, 2 ORDER BY 1, 2`,
    )
  ).rows

describe("awa storage rebuild-terminal-counters", () => {
  it("recomputes a corrupted counter table from the stored terminal jobs, in awa and in a custom schema", async () => {
    const db = await freshDatabases("single")
    expect((await awa(["migrate", "--database-url", db.primaryUrl])).code).toBe(ExitCode.ok)
    const prepared = await awa([
      "storage",
      "prepare-queue-storage-schema",
      "--schema",
      "tenant_c",
      "--database-url",
      db.primaryUrl,
    ])
    expect(prepared.code).toBe(ExitCode.ok)
    const pool = new pg.Pool({ connectionString: db.primaryUrl })
    try {
      for (const schema of ["awa", "tenant_c"]) {
        const engine = makeQueueStorageEngine({ schema })
        const x = toExecutor(pool)
        await engine.insertMany(
          x,
          [1, 2, 3].map((n) => ({
            kind: "cli.task",
            queue: "cli",
            argsJson: JSON.stringify({ n }),
            priority: 2,
            maxAttempts: 3,
            runAt: null,
            delayMs: null,
            timeoutMs: null,
            tags: [],
            metadataJson: "{}",
            uniqueKey: null,
            uniqueStates: null,
          })),
        )
        const claimed = await engine.claim(x, { queue: "cli", limit: 3, defaultTimeoutMs: 60_000 })
        await engine.complete(x, claimed.slice(0, 2))
        await engine.fail(x, [{ ref: claimed[2]!, attempt: 1, error: { kind: "error", message: "boom" } }])
        const truth = await counts(pool, schema)
        expect(truth).toEqual([
          { queue: "cli", state: "completed", n: 2 },
          { queue: "cli", state: "failed", n: 1 },
        ])
        await pool.query(`UPDATE "${schema}".queue_terminal_live_counts SET count = 99`)
        const args = ["storage", "rebuild-terminal-counters", "--database-url", db.primaryUrl]
        const r = await awa(schema === "awa" ? [...args, "--json"] : [...args, "--schema", schema])
        expect(r.code).toBe(ExitCode.ok)
        if (schema === "awa") expect(JSON.parse(r.stdout)).toEqual({ schema: "awa", counterRows: 2 })
        else expect(r.stdout).toBe("Rebuilt the terminal counters of schema tenant_c: 2 counter row(s).")
        expect(await counts(pool, schema)).toEqual(truth)
      }
    } finally {
      await pool.end()
    }
  })

  it("refuses a bad schema name or stray arguments with a usage error", async () => {
    const bad = await awa(["storage", "rebuild-terminal-counters", "--schema", "Bad-Name"])
    expect(bad.code).toBe(ExitCode.usage)
    expect(bad.stderr).toContain("--schema")
    const stray = await awa(["storage", "rebuild-terminal-counters", "awa"])
    expect(stray.code).toBe(ExitCode.usage)
    expect(stray.stderr).toContain("takes no arguments")
  })
})
