// A real PgBouncer in transaction-pooling mode in front of the test Postgres server, for the pooler tests.
// Debian's package installs it as /usr/sbin/pgbouncer; as root it must run as another OS user (postgres).
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import pg from "pg"

/** A running PgBouncer: the URL of a database through it, and how to stop it. */
export interface PgBouncer {
  /** `url` with host and port replaced by PgBouncer's. */
  readonly urlThrough: (url: string) => string
  /** Its log so far (for failure messages). */
  readonly log: () => string
  /** Stops it (SIGINT: immediate shutdown) and removes its files. */
  readonly stop: () => Promise<void>
}

const candidates = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]

/** The pgbouncer binary, or an Error that says how to install it. */
export const findPgBouncer = (): string | Error => {
  const onPath = (() => {
    try {
      return execFileSync("sh", ["-c", "command -v pgbouncer"], { encoding: "utf8" }).trim()
    } catch {
      return ""
    }
  })()
  const found = onPath !== "" ? onPath : candidates.find((c) => existsSync(c))
  return found !== undefined
    ? found
    : new Error(
        "The pooler tests need PgBouncer and it is not installed. Install it (Debian/Ubuntu: `apt-get install -y pgbouncer`; macOS: `brew install pgbouncer`) and run the tests again; .ci/run installs it in CI.",
      )
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const quoted = (text: string) => `"${text.replaceAll('"', '""')}"`

/**
 * Starts PgBouncer in transaction mode for the server of `serverUrl` (its user and password go into the
 * auth file; clients connect without a password check on loopback). `poolSize` server connections per
 * database and user are shared by all clients, so consecutive transactions of one client run on different
 * backends. Rejects with install instructions when PgBouncer is missing.
 */
export const startPgBouncer = async (serverUrl: string, poolSize = 4): Promise<PgBouncer> => {
  const binary = findPgBouncer()
  if (binary instanceof Error) throw binary
  const server = new URL(serverUrl)
  const user = decodeURIComponent(server.username)
  const password = decodeURIComponent(server.password)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "awa-pgbouncer-"))
  // PgBouncer runs as the postgres OS user when we are root: it must read the files and write its log.
  chmodSync(dir, 0o777)
  const ini = join(dir, "pgbouncer.ini")
  const logFile = join(dir, "pgbouncer.log")
  const pidFile = join(dir, "pgbouncer.pid")
  writeFileSync(join(dir, "userlist.txt"), `${quoted(user)} ${quoted(password)}\n`, { mode: 0o644 })
  writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=${server.hostname === "localhost" ? "127.0.0.1" : server.hostname} port=${server.port || "5432"}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "userlist.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${poolSize}`,
      "max_client_conn = 1000",
      "ignore_startup_parameters = extra_float_digits,options",
      `logfile = ${logFile}`,
      `pidfile = ${pidFile}`,
      "",
    ].join("\n"),
    { mode: 0o644 },
  )
  const asRoot = process.getuid?.() === 0
  const child: ChildProcess = asRoot
    ? spawn("runuser", ["-u", "postgres", "--", binary, ini], { stdio: "ignore" })
    : spawn(binary, [ini], { stdio: "ignore" })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "")
  const through = (url: string) => {
    const u = new URL(url)
    u.hostname = "127.0.0.1"
    u.port = String(port)
    return u.href
  }
  // Ready when a query goes through it.
  const deadline = Date.now() + 15_000
  for (;;) {
    const client = new pg.Client({ connectionString: through(serverUrl) })
    client.on("error", () => undefined)
    try {
      await client.connect()
      await client.query("SELECT 1")
      await client.end()
      break
    } catch (error) {
      await client.end().catch(() => undefined)
      const code = await Promise.race([exited, sleep(100).then(() => "running" as const)])
      if (code !== "running" || Date.now() > deadline) {
        child.kill("SIGKILL")
        if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGKILL")
        throw new Error(`PgBouncer did not start (${String(error)}); its log:\n${log()}`)
      }
    }
  }
  return {
    urlThrough: through,
    log,
    stop: async () => {
      // Signal PgBouncer itself (runuser does not pass signals on): SIGINT is its immediate shutdown.
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : Number.NaN
      const alive = () => {
        if (!Number.isInteger(pid)) return child.exitCode === null && child.signalCode === null
        try {
          process.kill(pid, 0)
          return true
        } catch {
          return false
        }
      }
      const signal = (sig: NodeJS.Signals) => {
        try {
          if (Number.isInteger(pid)) process.kill(pid, sig)
          else child.kill(sig)
        } catch {
          // Already gone.
        }
      }
      signal("SIGINT")
      for (let i = 0; i < 100 && alive(); i++) await sleep(50)
      if (alive()) signal("SIGKILL")
      await Promise.race([exited, sleep(2000)])
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
