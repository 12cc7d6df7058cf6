import { toDatabaseError } from "@awa/runtime/DatabaseError"
import { job } from "@awa/runtime/Producer"
import { describe, expect, it } from "vitest"
import { ExitCode, exitCodeFor } from "../src/ExitCode.js"
import { explainQueueStorageError, QueueStorageSchemaMissing } from "../src/internal/EngineFlags.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa } from "./support/cli.js"
import { Alpha, insertJobs } from "./support/jobs.js"

// Every command that touches jobs, as the user types it (with whatever it needs besides the engine flags).
const jobCommands: ReadonlyArray<ReadonlyArray<string>> = [
  ["job", "list"],
  ["job", "get", "1"],
  ["job", "retry", "1"],
  ["job", "cancel", "1"],
  ["queue", "stats"],
  ["queue", "pause", "q"],
  ["queue", "resume", "q"],
  ["queue", "dlq", "enable", "q"],
  ["dlq", "list"],
  ["dlq", "get", "1"],
  ["dlq", "retry", "--all"],
  ["dlq", "purge", "--all"],
  ["worker", "--tasks", "./no-such-tasks-module.js"],
  ["demo"],
]

describe("--engine and --queue-storage-schema", () => {
  it("are offered by every command that reads or writes jobs", async () => {
    for (const command of jobCommands) {
      const help = await awa([
        ...command.slice(0, command[0] === "worker" || command[0] === "demo" ? 1 : 2),
        "--help",
      ])
      expect(help.code, command.join(" ")).toBe(ExitCode.ok)
      expect(help.stdout, command.join(" ")).toMatch(/--engine\b.*canonical or queue_storage/)
      expect(help.stdout, command.join(" ")).toMatch(/--queue-storage-schema\b/)
    }
  })

  it("refuse an unknown engine with exit 2 before connecting, naming the flag and the closest engine", async () => {
    for (const command of jobCommands) {
      const result = await awa([
        ...command,
        "--engine",
        "queue-storage",
        "--database-url",
        "postgres://nowhere.invalid/x",
      ])
      expect(result.code, command.join(" ")).toBe(ExitCode.usage)
      expect(result.stderr, command.join(" ")).toContain(
        '--engine "queue-storage" names no storage engine. Did you mean "queue_storage"? Use one of: canonical, queue_storage',
      )
    }
  })

  it("refuse a schema name that is not a plain identifier, pointing at the prepare command", async () => {
    const result = await awa([
      "queue",
      "stats",
      "--queue-storage-schema",
      "Tenant-A",
      "--database-url",
      "postgres://nowhere.invalid/x",
    ])
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stderr).toContain(
      '--queue-storage-schema "Tenant-A" is not a usable queue-storage schema name',
    )
    expect(result.stderr).toContain("awa storage prepare-queue-storage-schema --schema NAME")
  })

  it("read AWA_ENGINE and AWA_QUEUE_STORAGE_SCHEMA when the flags are absent, and refuse bad values there too", async () => {
    const env = await awa(["job", "list", "--database-url", "postgres://nowhere.invalid/x"], {
      AWA_ENGINE: "postgres",
    })
    expect(env.code).toBe(ExitCode.usage)
    expect(env.stderr).toContain('AWA_ENGINE "postgres" names no storage engine')
    const schema = await awa(["dlq", "list", "--database-url", "postgres://nowhere.invalid/x"], {
      AWA_QUEUE_STORAGE_SCHEMA: "pg_tenant",
    })
    expect(schema.code).toBe(ExitCode.usage)
    expect(schema.stderr).toContain(
      'AWA_QUEUE_STORAGE_SCHEMA "pg_tenant" is not a usable queue-storage schema name',
    )
    expect(process.env.AWA_ENGINE).toBeUndefined()
  })

  it("serve the commands on the engine they name, the flag winning over the environment", async () => {
    const db = await migratedDatabase()
    const [id] = await insertJobs(db.pool, [job(Alpha, { n: 1 }, { queue: "mail" })])
    const canonical = ["--engine", "canonical", "--database-url", db.url]
    const list = await awa(["job", "list", "--json", ...canonical], { AWA_ENGINE: "bogus" })
    expect(list.code, list.stderr).toBe(ExitCode.ok)
    expect(JSON.parse(list.stdout).items.map((j: { id: string }) => j.id)).toEqual([id])
    const stats = await awa(["queue", "stats", "--json", "--database-url", db.url], {
      AWA_ENGINE: "canonical",
    })
    expect(stats.code, stats.stderr).toBe(ExitCode.ok)
    expect(JSON.parse(stats.stdout)[0]).toMatchObject({ queue: "mail", counts: { available: 1 } })
    const cancel = await awa(["job", "cancel", id!, "--json", ...canonical])
    expect(cancel.code, cancel.stderr).toBe(ExitCode.ok)
    expect(JSON.parse(cancel.stdout).state).toBe("cancelled")
  })
})

describe("a custom queue-storage schema that is not prepared", () => {
  const missing = (message: string, code = "42P01") =>
    toDatabaseError("admin queueStats", Object.assign(new Error(message), { code }))

  it("is explained with the command that prepares it (exit 3)", () => {
    const selection = { engine: "queue_storage", queueStorageSchema: "tenant_x" } as const
    const error = explainQueueStorageError(
      selection,
      missing('relation "tenant_x.ready_entries" does not exist'),
    )
    expect(error).toBeInstanceOf(QueueStorageSchemaMissing)
    expect((error as Error).message).toContain(
      "Run `awa storage prepare-queue-storage-schema --schema tenant_x` against it first",
    )
    expect(exitCodeFor(error)).toBe(ExitCode.database)
    expect(
      explainQueueStorageError(selection, missing('schema "tenant_x" does not exist', "3F000")),
    ).toBeInstanceOf(QueueStorageSchemaMissing)
  })

  it("leaves other errors, schema awa and the canonical engine alone", () => {
    const other = missing('relation "tenant_xy.ready_entries" does not exist')
    expect(explainQueueStorageError({ engine: "queue_storage", queueStorageSchema: "tenant_x" }, other)).toBe(
      other,
    )
    const inAwa = missing('relation "awa.ready_entries" does not exist')
    expect(explainQueueStorageError({ engine: "queue_storage" }, inAwa)).toBe(inAwa)
    const canonical = missing('relation "tenant_x.jobs" does not exist')
    expect(explainQueueStorageError({ engine: "canonical", queueStorageSchema: "tenant_x" }, canonical)).toBe(
      canonical,
    )
  })
})
