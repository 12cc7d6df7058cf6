import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { getMigrationSet } from "@awa/migrator/MigrationSet"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { awa } from "./support/cli.js"
import { freshDatabases } from "./support/databases.js"

const cli = awa

const withClient = async <A>(url: string, use: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}
const schemas = (url: string) =>
  withClient(url, async (client) => {
    const { rows } = await client.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public') ORDER BY 1",
    )
    return rows.map((r) => r.nspname)
  })

const tmp: Array<string> = []
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true })
})

describe("awa migrate", () => {
  it("applies on a fresh database, then changes nothing; --status shows nothing pending", async () => {
    const db = await freshDatabases("single")
    const first = await cli(["migrate", "--database-url", db.primaryUrl])
    expect(first.code, first.stderr).toBe(ExitCode.ok)
    expect(first.stdout).toMatch(/Applied \d+ migration\(s\):\ndatabase {2}set\/instance {7}migration/)
    // The applied list is a table: every row's migration starts in the header's column.
    const lines = first.stdout.split("\n")
    const header = lines.findIndex((l) => l.startsWith("database  set/instance"))
    const column = lines[header]?.indexOf("migration") ?? -1
    // Canonical first (every file, in order), then the queue-storage set.
    const canonicalFiles = getMigrationSet("canonical").migrations.map((m) => m.file)
    expect(canonicalFiles.slice(0, 4)).toEqual([
      "0001_awa_core.sql",
      "0002_leader_lease.sql",
      "0003_storage_state.sql",
      "0004_sql_producer.sql",
    ])
    const rows = lines.slice(header + 1, header + 2 + canonicalFiles.length)
    expect(rows.map((r) => r.slice(column).split(" ")[0])).toEqual([
      ...canonicalFiles,
      "0001_queue_storage_substrate.sql",
    ])
    for (let i = 0; i < 2; i++) {
      const again = await cli(["migrate"], { DATABASE_URL: db.primaryUrl })
      expect(again.code).toBe(ExitCode.ok)
      expect(again.stdout).toContain("Already up to date")
    }
    const status = await cli(["migrate", "--status", "--json"], { DATABASE_URL: db.primaryUrl })
    expect(status.code).toBe(ExitCode.ok)
    const parsed = JSON.parse(status.stdout) as Array<{
      set: string
      pending: Array<unknown>
      drift: Array<unknown>
    }>
    expect(parsed.map((s) => s.set)).toEqual(["canonical", "queue-storage"])
    expect(parsed.every((s) => s.pending.length === 0 && s.drift.length === 0)).toBe(true)
    const table = await cli(["migrate", "--status"], { DATABASE_URL: db.primaryUrl })
    expect(table.stdout).toMatch(/^database\s+target\s+set\s+instance\s+applied\s+latest\s+pending\s+drift/)
  })

  it("--dry-run shows the plan and SQL and changes nothing", async () => {
    const db = await freshDatabases("single")
    const r = await cli(["migrate", "--dry-run", "--database-url", db.primaryUrl])
    expect(r.code).toBe(ExitCode.ok)
    expect(r.stdout).toContain("Would apply")
    expect(r.stdout).toContain("CREATE")
    expect(await schemas(db.primaryUrl)).toEqual([])
  })

  it("--sql and --extract-to need no database; their layout follows the topology unless --layout says", async () => {
    // No separate pgmq database configured: one database, one section, one ledger bootstrap.
    const single = await cli(["migrate", "--sql", "--with-pgmq"])
    expect(single.code, single.stderr).toBe(ExitCode.ok)
    expect(single.stdout).toContain("-- ==== awa target database: primary ====")
    expect(single.stdout).not.toContain("-- ==== awa target database: pgmq ====")
    expect(single.stdout.match(/-- file: 0000_awa_migrator_ledger\.sql/g)).toHaveLength(1)
    expect(single.stdout).toContain("-- Exported by awa: layout single, transaction style none")
    expect(single.stdout).toContain("-- pgmq provider: sql")
    const sql = await cli(["migrate", "--sql", "--with-pgmq"], {
      DATABASE_URL: "postgres://u@127.0.0.1:1/a",
      PGMQ_DATABASE_URL: "postgres://u@127.0.0.1:1/q",
    })
    expect(sql.code, sql.stderr).toBe(ExitCode.ok)
    expect(sql.stdout).toContain("-- ==== awa target database: primary ====")
    expect(sql.stdout).toContain("-- ==== awa target database: pgmq ====")
    const forced = await cli([
      "migrate",
      "--sql",
      "--with-pgmq",
      "--layout",
      "split",
      "--pgmq-provider",
      "extension",
    ])
    expect(forced.stdout).toContain("-- ==== awa target database: pgmq ====")
    expect(forced.stdout).toContain("-- pgmq provider: extension")
    const perFile = await cli(["migrate", "--sql", "--transaction-style", "per-file"])
    expect(perFile.stdout).toMatch(/^BEGIN;$/m)
    const dir = mkdtempSync(join(tmpdir(), "awa-cli-extract-"))
    tmp.push(dir)
    const extracted = await cli(["migrate", "--extract-to", join(dir, "sql")])
    expect(extracted.code).toBe(ExitCode.ok)
    expect(readdirSync(join(dir, "sql"))).toEqual(["primary"])
  })

  it("--with-pgmq lists only the migrations that changed something and names the ledger-only ones", async () => {
    const db = await freshDatabases("single")
    const r = await cli(["migrate", "--with-pgmq", "--pgmq-provider", "sql", "--database-url", db.primaryUrl])
    expect(r.code, r.stderr).toBe(ExitCode.ok)
    const [applied, recorded] = r.stdout.split("as ledger rows only")
    expect(applied).toContain("0002_pgmq_sql_api.sql")
    expect(applied).not.toContain("0001_pgmq_extension.sql")
    expect(r.stdout).toMatch(
      /Recorded 1 migration\(s\) as ledger rows only .*\n {2}pgmq\/pgmq 0001_pgmq_extension\.sql \(only for provider=extension\)/,
    )
    expect(recorded).toBeDefined()
  })

  it("an --extract-to export applied with psql --single-transaction per file leaves awa migrate --status up to date (split)", async () => {
    const db = await freshDatabases("split")
    const env = { DATABASE_URL: db.primaryUrl, PGMQ_DATABASE_URL: db.pgmqUrl }
    const dir = mkdtempSync(join(tmpdir(), "awa-cli-extract-"))
    tmp.push(dir)
    const extracted = await cli(["migrate", "--with-pgmq", "--extract-to", join(dir, "sql")], env)
    expect(extracted.code, extracted.stderr).toBe(ExitCode.ok)
    expect(extracted.stdout).toContain("layout split, transaction style none, pgmq provider sql")
    for (const [role, url] of [
      ["primary", db.primaryUrl],
      ["pgmq", db.pgmqUrl],
    ] as const) {
      for (const file of readdirSync(join(dir, "sql", role)).sort()) {
        const r = spawnSync(
          process.env.PSQL ?? "psql",
          [
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-d",
            url,
            "-f",
            join(dir, "sql", role, file),
          ],
          { encoding: "utf8" },
        )
        expect(r.status, r.stderr).toBe(0)
      }
    }
    const status = await cli(["migrate", "--status", "--with-pgmq", "--json"], env)
    expect(status.code, status.stderr).toBe(ExitCode.ok)
    const parsed = JSON.parse(status.stdout) as Array<{ set: string; pending: unknown[]; drift: unknown[] }>
    expect(parsed.map((s) => s.set)).toEqual(["canonical", "queue-storage", "pgmq"])
    expect(parsed.every((s) => s.pending.length === 0 && s.drift.length === 0)).toBe(true)
    const again = await cli(["migrate", "--with-pgmq"], env)
    expect(again.stdout).toContain("Already up to date")
  })

  it("prepare-queue-storage-schema installs a substrate; --reset --schema awa is refused and changes nothing", async () => {
    const db = await freshDatabases("single")
    expect((await cli(["migrate", "--database-url", db.primaryUrl])).code).toBe(ExitCode.ok)
    const ok = await cli([
      "storage",
      "prepare-queue-storage-schema",
      "--schema",
      "tenant_a",
      "--database-url",
      db.primaryUrl,
    ])
    expect(ok.code, ok.stderr).toBe(ExitCode.ok)
    expect(await schemas(db.primaryUrl)).toEqual(["awa", "awa_migrator", "tenant_a"])
    const refused = await cli([
      "storage",
      "prepare-queue-storage-schema",
      "--reset",
      "--schema",
      "awa",
      "--database-url",
      db.primaryUrl,
    ])
    expect(refused.code).toBe(ExitCode.unsafe)
    expect(refused.stderr).toContain('Refusing to reset schema "awa"')
    expect(await schemas(db.primaryUrl)).toEqual(["awa", "awa_migrator", "tenant_a"])
    // A schema awa did not prepare may hold the user's data: never dropped.
    await withClient(db.primaryUrl, (c) => c.query("CREATE SCHEMA myapp; CREATE TABLE myapp.orders (id int)"))
    const userSchema = await cli([
      "storage",
      "prepare-queue-storage-schema",
      "--reset",
      "--schema",
      "myapp",
      "--database-url",
      db.primaryUrl,
    ])
    expect(userSchema.code).toBe(ExitCode.unsafe)
    expect(userSchema.stderr).toMatch(/Refusing to reset schema "myapp": awa did not prepare it/)
    expect(await schemas(db.primaryUrl)).toEqual(["awa", "awa_migrator", "myapp", "tenant_a"])
    const status = await cli(["migrate", "--status", "--json", "--database-url", db.primaryUrl])
    expect((JSON.parse(status.stdout) as Array<{ instance: string }>).map((s) => s.instance)).toEqual([
      "awa",
      "awa",
      "tenant_a",
    ])
  })
})

describe("awa migrate: bad input gives clear errors and exit codes, changing nothing", () => {
  it.each([
    [["migrate", "--set", "canonicl", "--sql"], ExitCode.usage, 'Did you mean "canonical"?'],
    [["migrate", "--stauts"], ExitCode.usage, 'Did you mean "--status"?'],
    [["migrate", "--status", "--dry-run"], ExitCode.usage, "cannot be used together"],
    [["migrate", "--sql", "--extract-to", "/tmp/x"], ExitCode.usage, "cannot be used together"],
    [["migrate", "--sql", "--json"], ExitCode.usage, "--json does not apply"],
    [["migrate", "--with-pgmq", "--pgmq-provider", "sqll", "--sql"], ExitCode.usage, 'did you mean "sql"'],
    [["migrate", "--pgmq-provider", "sql"], ExitCode.usage, "add --with-pgmq"],
    [
      ["migrate", "--sql", "--transaction-style", "each"],
      ExitCode.usage,
      "--transaction-style must be one of: none, per-file",
    ],
    [["migrate", "--sql", "--layout", "both"], ExitCode.usage, "--layout must be one of: single, split"],
    [
      ["migrate", "--transaction-style", "none"],
      ExitCode.usage,
      "--transaction-style only applies to --sql and --extract-to",
    ],
    [["migrate"], ExitCode.database, "DATABASE_URL"],
    [["migrate", "--database-url", "mysql://x@y/z"], ExitCode.usage, 'scheme is "mysql"'],
    [["migrate", "--database-url", "postgres://u:pw@127.0.0.1:1/db"], ExitCode.database, "Cannot connect"],
    [["migrat"], ExitCode.usage, 'Did you mean "migrate"?'],
    [["storage", "prepare-queue-storage-schema"], ExitCode.usage, "--schema NAME is required"],
    [
      [
        "storage",
        "prepare-queue-storage-schema",
        "--schema",
        'a"b',
        "--database-url",
        "postgres://u@127.0.0.1:1/db",
      ],
      ExitCode.usage,
      "Invalid schema name",
    ],
    [
      [
        "storage",
        "prepare-queue-storage-schema",
        "--schema",
        "Tenant",
        "--database-url",
        "postgres://u@127.0.0.1:1/db",
      ],
      ExitCode.usage,
      "upper-case",
    ],
    [
      [
        "storage",
        "prepare-queue-storage-schema",
        "--schema",
        "t".repeat(64),
        "--database-url",
        "postgres://u@127.0.0.1:1/db",
      ],
      ExitCode.usage,
      "at most 63",
    ],
  ] as const)("awa %j exits %i", async (argv, code, message) => {
    const r = await cli(argv)
    expect(r.code, r.stderr).toBe(code)
    expect(r.stderr).toContain(message)
  })

  it("drift makes migrate exit 4 without changing anything, and the real binary passes the code through", async () => {
    const db = await freshDatabases("single")
    expect((await cli(["migrate", "--database-url", db.primaryUrl])).code).toBe(ExitCode.ok)
    const client = new pg.Client({ connectionString: db.primaryUrl })
    await client.connect()
    await client.query(
      "UPDATE awa_migrator.ledger SET checksum = 'edited' WHERE migration_set = 'queue-storage'",
    )
    await client.end()
    const bin = join(import.meta.dirname, "..", "dist", "bin.js")
    const r = spawnSync(process.execPath, [bin, "migrate", "--database-url", db.primaryUrl], {
      encoding: "utf8",
    })
    expect(r.status).toBe(ExitCode.refused)
    expect(r.stderr).toMatch(/Migration drift: queue-storage\/awa version 1/)
  })
})

describe("awa migrate: conflicting flags, unwritable --extract-to and bad URLs are usage errors (exit 2)", () => {
  it("refuses an --extract-to path that cannot be a folder, without a stack trace", async () => {
    const dir = mkdtempSync(join(tmpdir(), "awa-cli-extract-"))
    tmp.push(dir)
    const file = join(dir, "awa.sql")
    writeFileSync(file, "-- mine\n")
    const existing = await cli(["migrate", "--extract-to", file])
    expect(existing.code, existing.stderr).toBe(ExitCode.usage)
    expect(existing.stderr).toContain(`--extract-to ${file} is an existing file, not a folder`)
    const below = await cli(["migrate", "--extract-to", join(file, "sql")])
    expect(below.code, below.stderr).toBe(ExitCode.usage)
    expect(below.stderr).toContain("cannot write there")
    expect(below.stderr).not.toMatch(/\n\s+at /)
    expect(readFileSync(file, "utf8")).toBe("-- mine\n")
  })

  it("refuses --with-pgmq with a --set that leaves pgmq out, and --pgmq-provider without pgmq in every mode", async () => {
    const dir = mkdtempSync(join(tmpdir(), "awa-cli-extract-"))
    tmp.push(dir)
    for (const mode of [["--sql"], ["--dry-run"], []]) {
      const r = await cli(["migrate", "--set", "canonical", "--with-pgmq", ...mode], {
        DATABASE_URL: "postgres://u@127.0.0.1:1/db",
      })
      expect(r.code, r.stderr).toBe(ExitCode.usage)
      expect(r.stderr).toContain("--with-pgmq and --set canonical conflict")
    }
    const withPgmq = await cli(["migrate", "--set", "canonical", "--set", "pgmq", "--with-pgmq", "--sql"])
    expect(withPgmq.code, withPgmq.stderr).toBe(ExitCode.ok)
    for (const mode of [["--sql"], ["--extract-to", join(dir, "out")]]) {
      const r = await cli(["migrate", "--pgmq-provider", "sql", ...mode])
      expect(r.code, r.stderr).toBe(ExitCode.usage)
      expect(r.stderr).toContain("--pgmq-provider only applies to the pgmq set")
    }
    expect(existsSync(join(dir, "out"))).toBe(false)
  })

  it("explains why an unreachable pgmq database matters without --with-pgmq, changing nothing", async () => {
    const db = await freshDatabases("single")
    const r = await cli(["migrate"], {
      DATABASE_URL: db.primaryUrl,
      PGMQ_DATABASE_URL: "postgres://u@127.0.0.1:1/q",
    })
    expect(r.code, r.stderr).toBe(ExitCode.database)
    expect(r.stderr).toMatch(
      /Cannot connect to the pgmq database at 127\.0\.0\.1:1\/q: .*unset it if pgmq is not used/,
    )
    expect(await schemas(db.primaryUrl)).toEqual([])
  })

  it("names a bad port and the environment variable a bad URL came from; a missing URL names the flag", async () => {
    const flag = await cli(["migrate", "--status", "--database-url", "postgres://u@127.0.0.1:99999/db"])
    expect(flag.code, flag.stderr).toBe(ExitCode.usage)
    expect(flag.stderr).toContain('its port "99999" is not a number from 1 to 65535.')
    const env = await cli(["migrate"], { DATABASE_URL: "postgres://u@127.0.0.1:notaport/db" })
    expect(env.code, env.stderr).toBe(ExitCode.usage)
    expect(env.stderr).toContain(
      'its port "notaport" is not a number from 1 to 65535 (the URL came from DATABASE_URL)',
    )
    const pgmq = await cli(["migrate", "--with-pgmq"], {
      DATABASE_URL: "postgres://u@127.0.0.1:1/db",
      PGMQ_DATABASE_URL: "postgres://u@127.0.0.1:70000/q",
    })
    expect(pgmq.code, pgmq.stderr).toBe(ExitCode.usage)
    expect(pgmq.stderr).toContain("The pgmq database URL is not valid")
    expect(pgmq.stderr).toContain("(the URL came from PGMQ_DATABASE_URL)")
    const storage = await cli(["storage", "prepare-queue-storage-schema", "--schema", "t"], {
      DATABASE_URL: "postgres://u@127.0.0.1:0/db",
    })
    expect(storage.code, storage.stderr).toBe(ExitCode.usage)
    expect(storage.stderr).toContain('its port "0"')
    const missing = await cli(["migrate"])
    expect(missing.code).toBe(ExitCode.database)
    expect(missing.stderr).toContain("Pass --database-url")
    expect(missing.stderr).not.toContain("databaseUrl")
  })

  it("says a schema name must not start with a digit", async () => {
    const r = await cli([
      "storage",
      "prepare-queue-storage-schema",
      "--schema",
      "1abc",
      "--database-url",
      "postgres://u@127.0.0.1:1/db",
    ])
    expect(r.code, r.stderr).toBe(ExitCode.usage)
    expect(r.stderr).toContain('Invalid schema name "1abc": it starts with a digit')
  })
})
