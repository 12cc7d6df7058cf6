// `awa pgmq` against a split deployment: the pgmq set lives on its own database, which the CLI finds through
// PGMQ_DATABASE_URL (else DATABASE_URL, as the topology resolves it).
import { createHash } from "node:crypto"
import { migrate, migrationSets } from "@awa/migrator"
import { createPool } from "@awa/runtime/PgExecutor"
import { acquireTestDatabases } from "@awa/testing/vitest/TestPostgres"
import { describe, expect, it, onTestFinished } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { awa } from "./support/cli.js"

const templateKey = (): string => {
  const hash = createHash("sha256")
  for (const set of migrationSets().values()) {
    for (const m of set.migrations) hash.update(`${set.name}/${m.file}:${m.sourceChecksum}`)
  }
  return `awa-cli-pgmq-${hash.digest("hex").slice(0, 12)}`
}

/** A split deployment migrated with the pgmq set, and the environment that points the CLI at it. */
const splitDeployment = async () => {
  const databases = await acquireTestDatabases({
    mode: "split",
    template: {
      key: templateKey(),
      prepare: async ({ primaryUrl, pgmqUrl }) =>
        void (await migrate({ databaseUrl: primaryUrl, pgmqDatabaseUrl: pgmqUrl, withPgmq: true })),
    },
  })
  const pgmq = createPool(databases.pgmqUrl, { max: 2 })
  pgmq.on("error", () => undefined)
  onTestFinished(async () => {
    await pgmq.end()
    await databases.drop()
  })
  const env = { DATABASE_URL: databases.primaryUrl, PGMQ_DATABASE_URL: databases.pgmqUrl }
  const run = (argv: ReadonlyArray<string>) => awa(["pgmq", ...argv], env)
  const json = async <T>(argv: ReadonlyArray<string>): Promise<T> => {
    const r = await run([...argv, "--json"])
    if (r.code !== 0) throw new Error(`awa pgmq ${argv.join(" ")} exited ${r.code}: ${r.stderr}`)
    return JSON.parse(r.stdout) as T
  }
  return { databases, pgmq, env, run, json }
}

describe("awa pgmq", () => {
  it("lists queues, sends, reads and shows metrics on the pgmq database", async () => {
    const d = await splitDeployment()
    await d.pgmq.query("SELECT pgmq.create('orders'), pgmq.create('audit')")
    const empty = await d.run(["queues"])
    expect(empty.code, empty.stderr).toBe(ExitCode.ok)
    expect(empty.stdout).toMatch(/^queue\s+length\s+created_at\s+partitioned\s+unlogged\n(audit|orders)/)

    const sent = await d.json<{ msgId: string }>(["send", "orders", '{"id":1}', "--headers", '{"trace":"t"}'])
    expect(sent.msgId).toMatch(/^[0-9]+$/)
    const plain = await d.run(["send", "orders", '{"id":2}', "--no-notify"])
    expect(plain.stdout).toMatch(/^Sent message [0-9]+ to orders\.$/)
    await d.run(["send", "orders", '{"id":3}', "--delay", "1h"])

    const queues = await d.json<Array<{ queue: string; length: number }>>(["queues"])
    expect(queues.map((q) => [q.queue, q.length])).toEqual([
      ["audit", 0],
      ["orders", 3],
    ])
    // --pgmq-database-url names the pgmq database as PGMQ_DATABASE_URL does.
    const byFlag = await awa(["pgmq", "queues", "--json", "--pgmq-database-url", d.databases.pgmqUrl], {
      DATABASE_URL: d.databases.primaryUrl,
    })
    expect(JSON.parse(byFlag.stdout)).toHaveLength(2)
    // The primary database holds no pgmq queues in split mode.
    const onPrimary = await awa(["pgmq", "queues"], { DATABASE_URL: d.databases.primaryUrl })
    expect(onPrimary.code).toBe(ExitCode.database)
    expect(onPrimary.stderr).toMatch(/awa migrate --with-pgmq/)

    const read = await d.json<
      Array<{ msgId: string; message: unknown; headers: unknown; readCount: number }>
    >(["read", "orders", "--limit", "5"])
    expect(read.map((m) => [m.message, m.headers, m.readCount])).toEqual([
      [{ id: 1 }, { trace: "t" }, 1],
      [{ id: 2 }, null, 1],
    ])
    // The default --vt 0 leaves them visible; --vt hides them.
    expect(await d.json<Array<unknown>>(["read", "orders", "--vt", "1m", "--limit", "1"])).toHaveLength(1)
    expect(await d.json<Array<{ message: unknown }>>(["read", "orders", "--limit", "5"])).toEqual([
      expect.objectContaining({ message: { id: 2 } }),
    ])

    const metrics = await d.json<{
      queue: string
      length: number
      visibleLength: number
      totalMessages: number
    }>(["metrics", "orders"])
    expect(metrics).toMatchObject({ queue: "orders", length: 3, visibleLength: 1, totalMessages: 3 })
    const table = await d.run(["metrics"])
    expect(table.stdout).toMatch(
      /^queue\s+length\s+visible\s+oldest\s+newest\s+total_sent\naudit\s+0\s+0\s+-\s+-\s+0\norders\s+3\s+1/,
    )
  })

  it("refuses purge and drop without --yes (exit 6), then purges and drops", async () => {
    const d = await splitDeployment()
    await d.pgmq.query("SELECT pgmq.create('jobs_out')")
    await d.run(["send", "jobs_out", '"a"'])
    await d.run(["send", "jobs_out", '"b"'])
    const refused = await d.run(["purge", "jobs_out"])
    expect(refused.code).toBe(ExitCode.unsafe)
    expect(refused.stderr).toContain("Refusing to delete all 2 message(s) of pgmq queue jobs_out")
    expect(refused.stderr).toContain("--yes")
    expect((await d.json<{ length: number }>(["metrics", "jobs_out"])).length).toBe(2)
    expect(await d.json(["purge", "jobs_out", "--yes"])).toEqual({ queue: "jobs_out", purged: 2 })

    const dropRefused = await d.run(["drop", "jobs_out"])
    expect(dropRefused.code).toBe(ExitCode.unsafe)
    expect(dropRefused.stderr).toContain("Refusing to drop pgmq queue jobs_out")
    const dropped = await d.run(["drop", "jobs_out", "--yes"])
    expect(dropped.code, dropped.stderr).toBe(ExitCode.ok)
    expect(dropped.stdout).toBe("Dropped pgmq queue jobs_out.")
    expect(await d.json<Array<unknown>>(["queues"])).toEqual([])
  })

  it("says what is wrong: a missing queue (7), bad input (2), no database URL (3)", async () => {
    const d = await splitDeployment()
    for (const argv of [
      ["read", "nope"],
      ["send", "nope", "{}"],
      ["metrics", "nope"],
      ["purge", "nope", "--yes"],
      ["drop", "nope"],
    ]) {
      const r = await d.run(argv)
      expect(r.code, argv.join(" ")).toBe(ExitCode.notFound)
      expect(r.stderr).toContain('queue "nope" does not exist on the pgmq database')
    }
    await d.pgmq.query("SELECT pgmq.create('inbox')")
    const badJson = await d.run(["send", "inbox", "{not json"])
    expect(badJson.code).toBe(ExitCode.usage)
    expect(badJson.stderr).toMatch(/MESSAGE_JSON must be JSON/)
    expect((await d.run(["send", "inbox", "{}", "--headers", "[1]"])).stderr).toMatch(
      /--headers must be a JSON object/,
    )
    expect((await d.run(["send", "inbox"])).code).toBe(ExitCode.usage)
    expect((await d.run(["read", "inbox", "--limit", "0"])).code).toBe(ExitCode.usage)
    expect((await d.run(["read"])).stderr).toMatch(/needs a queue name/)
    expect((await d.run(["sned"])).stderr).toMatch(/send/)
    const noUrl = await awa(["pgmq", "queues"], {})
    expect(noUrl.code).toBe(ExitCode.database)
    const unreachable = await awa(
      ["pgmq", "queues", "--pgmq-database-url", "postgres://awa@127.0.0.1:1/none"],
      {},
    )
    expect(unreachable.code).toBe(ExitCode.database)
    expect(unreachable.stderr).toMatch(
      /^awa pgmq: Cannot connect to the pgmq database at 127\.0\.0\.1:1\/none/,
    )
    const badUrl = await awa(["pgmq", "queues"], { PGMQ_DATABASE_URL: "mysql://x/y" })
    expect(badUrl.code).toBe(ExitCode.usage)
    const help = await d.run(["purge", "--help"])
    expect(help.code).toBe(ExitCode.ok)
    expect(help.stdout).toMatch(/Usage: awa pgmq purge QUEUE --yes/)
    expect((await awa(["--help"])).stdout).toMatch(/pgmq\s+pgmq queues on the pgmq database/)
  })
})
