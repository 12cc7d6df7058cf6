/**
 * Isolated databases for tests on one Postgres server: create, clone from a template, drop, and the
 * primary/pgmq pair a test needs in single or split mode.
 */
import { createHash, randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { setTimeout as sleep } from "node:timers/promises"
import {
  type AdminSession,
  duplicateDatabase,
  objectInUse,
  quoteIdentifier,
  sqlStateOf,
  withAdminSession,
} from "./internal/AdminSession.js"
import { databaseOfUrl, isPostgresUrl, redactUrl, urlForDatabase } from "./internal/ConnectionUrl.js"
import type { TestEnvironment } from "./PostgresServer.js"
import { TestDatabaseError } from "./TestDatabaseError.js"

/**
 * How a test's databases are laid out: `single` puts everything (awa and pgmq) in one database; `split`
 * gives the test a primary database and a separate pgmq database, as `PGMQ_DATABASE_URL` would.
 */
export type TestDbMode = "single" | "split"

/** Every {@link TestDbMode}. */
export const testDbModes: ReadonlyArray<TestDbMode> = ["single", "split"]

/**
 * Reads `AWA_TEST_DB_MODE`: `single` when unset or empty, else the mode it names. Throws a
 * {@link TestDatabaseError} (`InvalidMode`) for any other value rather than silently defaulting.
 */
export const testDbModeFromEnv = (env: TestEnvironment = process.env): TestDbMode =>
  parseTestDbMode(env.AWA_TEST_DB_MODE, "AWA_TEST_DB_MODE") ?? "single"

/**
 * Checks a mode given in code or configuration: `undefined` when absent or empty, else the mode. Throws
 * a {@link TestDatabaseError} (`InvalidMode`) naming `source` for any other value.
 */
export const parseTestDbMode = (value: string | undefined, source = "mode"): TestDbMode | undefined => {
  if (value === undefined || value === "") return undefined
  if ((testDbModes as ReadonlyArray<string>).includes(value)) return value as TestDbMode
  throw new TestDatabaseError({
    reason: "InvalidMode",
    message:
      `${source}=${JSON.stringify(value)} is not a test database mode. Use "single" (one database) or ` +
      `"split" (a primary and a separate pgmq database), or leave it unset for "single".`,
  })
}

/** The longest database name Postgres keeps without truncating (NAMEDATALEN - 1 bytes). */
export const maxDatabaseNameLength = 63

const databaseNamePattern = /^[a-z_][a-z0-9_]*$/

/**
 * Returns `name` when it is a lowercase SQL identifier (`[a-z_][a-z0-9_]*`) of at most 63 characters,
 * and throws a {@link TestDatabaseError} (`InvalidName`) otherwise. Names are still quoted in SQL.
 */
export const validateDatabaseName = (name: string): string => {
  if (databaseNamePattern.test(name) && name.length <= maxDatabaseNameLength) return name
  throw new TestDatabaseError({
    reason: "InvalidName",
    message:
      `${JSON.stringify(name)} is not a usable test database name: use lowercase letters, digits and ` +
      `underscores, starting with a letter or underscore, at most ${maxDatabaseNameLength} characters.`,
    database: name,
  })
}

/** A fresh random database name, `<prefix>_<16 random base-36 characters>`; the prefix is validated too. */
export const randomDatabaseName = (prefix = "awa_test"): string => {
  const suffix = BigInt(`0x${randomBytes(10).toString("hex")}`)
    .toString(36)
    .padStart(16, "0")
    .slice(-16)
  return validateDatabaseName(`${prefix}_${suffix}`)
}

const checkedAdminUrl = (adminUrl: string): string => {
  if (isPostgresUrl(adminUrl)) return adminUrl
  throw new TestDatabaseError({
    reason: "InvalidUrl",
    message: `The admin URL ${redactUrl(adminUrl)} is not a postgres:// or postgresql:// URL.`,
  })
}

/** The URL of database `name` on the server behind `adminUrl` (same credentials, host and parameters). */
export const databaseUrlFor = (adminUrl: string, name: string): string =>
  urlForDatabase(checkedAdminUrl(adminUrl), validateDatabaseName(name))

const nameOf = (database: string): string => {
  const name = database.includes("://") ? databaseOfUrl(database) : database
  if (name === undefined) {
    throw new TestDatabaseError({
      reason: "InvalidName",
      message: `The URL ${redactUrl(database)} names no database.`,
    })
  }
  return validateDatabaseName(name)
}

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const databaseFailed = (what: string, name: string, cause: unknown): TestDatabaseError =>
  new TestDatabaseError({
    reason: "DatabaseFailed",
    message: `Could not ${what} database ${name}: ${describeError(cause)}.`,
    database: name,
    cause,
  })

/** Who made a test or template database: recorded as the database's comment, read by the sweep. */
export interface DatabaseOwner {
  /** The host the owning process ran on. */
  readonly host: string
  /** The owning process's pid on that host. */
  readonly pid: number
  /** When the database was made. */
  readonly created: Date
}

const ownerPrefix = "@awa/testing"

const ownerComment = (owner: DatabaseOwner = { host: hostname(), pid: process.pid, created: new Date() }) =>
  `${ownerPrefix} ${JSON.stringify({ host: owner.host, pid: owner.pid, created: owner.created.toISOString() })}`

/** Reads a database comment written by this module: the owner, or undefined for any other comment. */
export const parseDatabaseOwner = (comment: string | null | undefined): DatabaseOwner | undefined => {
  if (typeof comment !== "string" || !comment.startsWith(`${ownerPrefix} `)) return undefined
  try {
    const parsed = JSON.parse(comment.slice(ownerPrefix.length + 1)) as Record<string, unknown>
    const created = new Date(String(parsed.created))
    if (typeof parsed.host !== "string" || !Number.isInteger(parsed.pid) || Number.isNaN(created.getTime()))
      return undefined
    return { host: parsed.host, pid: parsed.pid as number, created }
  } catch {
    return undefined
  }
}

// Records this process as the owner, so a later run can tell a database left behind by a killed run.
const markOwner = (session: AdminSession, name: string): Promise<unknown> =>
  session.query(`COMMENT ON DATABASE ${quoteIdentifier(name)} IS ${quoteLiteral(ownerComment())}`)

const quoteLiteral = (text: string): string => `'${text.replaceAll("'", "''")}'`

/**
 * Creates an empty database (from the server's default template) on the server behind `adminUrl` and
 * returns its URL. Without `name`, a random name from {@link randomDatabaseName} is used.
 */
export const createDatabase = async (adminUrl: string, name?: string): Promise<string> => {
  const database = name === undefined ? randomDatabaseName() : validateDatabaseName(name)
  try {
    await withAdminSession(checkedAdminUrl(adminUrl), async (session) => {
      await session.query(`CREATE DATABASE ${quoteIdentifier(database)}`)
      await markOwner(session, database)
    })
  } catch (cause) {
    throw databaseFailed("create", database, cause)
  }
  return urlForDatabase(adminUrl, database)
}

/** Drops a database inside an open admin session, first disconnecting its users and unmarking a template. */
const dropDatabaseIn = async (session: AdminSession, name: string): Promise<void> => {
  const rows = await session.query("SELECT datistemplate FROM pg_database WHERE datname = $1", [name])
  if (rows.length === 0) return
  const quoted = quoteIdentifier(name)
  // A template database cannot be dropped until it is unmarked.
  if (rows[0]?.datistemplate === true) await session.query(`ALTER DATABASE ${quoted} WITH IS_TEMPLATE false`)
  if (session.serverVersionNum >= 130000) {
    await session.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`)
  } else {
    await session.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name])
    await session.query(`DROP DATABASE IF EXISTS ${quoted}`)
  }
}

/**
 * Drops a database (given by name, or by a URL on the same server) if it exists, disconnecting anything
 * still connected to it; a template is unmarked first. Dropping a missing database does nothing.
 */
export const dropDatabase = async (adminUrl: string, database: string): Promise<void> => {
  const name = nameOf(database)
  try {
    await withAdminSession(checkedAdminUrl(adminUrl), (session) => dropDatabaseIn(session, name))
  } catch (cause) {
    throw databaseFailed("drop", name, cause)
  }
}

/** A template database made ready by {@link createTemplate} or {@link createTemplates}. */
export interface TemplateDatabase {
  /** The template's database name, to pass to {@link cloneDatabase}. */
  readonly name: string
  /** `true` when a complete template of that name already existed and `prepare` was not run. */
  readonly reused: boolean
}

/** Options of {@link createTemplate}. */
export interface CreateTemplateOptions {
  /** The template's database name (validated); derive it from what `prepare` installs. */
  readonly name: string
  /** Fills the new database through its URL, e.g. by running migrations; must close its connections. */
  readonly prepare: (url: string) => Promise<void>
}

/** Options of {@link createTemplates}. */
export interface CreateTemplatesOptions {
  /** The templates' database names (validated, distinct). */
  readonly names: ReadonlyArray<string>
  /** Fills all the new databases together, given their URLs in the order of `names`. */
  readonly prepare: (urls: ReadonlyArray<string>) => Promise<void>
}

const advisoryLockKeys = (names: ReadonlyArray<string>): [number, number] => {
  const digest = createHash("sha256")
    .update(`@awa/testing/template/${names.join(",")}`)
    .digest()
  return [digest.readInt32BE(0), digest.readInt32BE(4)]
}

/**
 * Creates several template databases that are prepared together (for instance a primary and a pgmq
 * database migrated by one call), or reuses them when complete templates of those names already exist.
 *
 * Safe when many processes race: creation runs under a Postgres advisory lock on the admin database, so
 * one process prepares while the others wait and then reuse its templates. A template is complete once
 * it is marked `IS_TEMPLATE`; leftovers of an interrupted preparation are dropped and made again. Marked
 * templates refuse connections, so nothing can hold them open and block clones. If `prepare` throws,
 * the half-prepared databases are dropped and a {@link TestDatabaseError} (`TemplatePrepareFailed`) is
 * thrown with the original error as `cause`.
 */
export const createTemplates = async (
  adminUrl: string,
  options: CreateTemplatesOptions,
): Promise<ReadonlyArray<TemplateDatabase>> => {
  const url = checkedAdminUrl(adminUrl)
  const names = options.names.map(validateDatabaseName)
  if (new Set(names).size !== names.length || names.length === 0) {
    throw new TestDatabaseError({
      reason: "InvalidName",
      message: `Template names must be distinct and at least one: got ${JSON.stringify(names)}.`,
    })
  }
  const [lockHigh, lockLow] = advisoryLockKeys(names)
  const reused = await withAdminSession(url, async (session) => {
    await session.query("SELECT pg_advisory_lock($1, $2)", [lockHigh, lockLow])
    try {
      const existing = await session.query(
        "SELECT datname, datistemplate FROM pg_database WHERE datname = ANY($1::text[])",
        [names],
      )
      if (existing.length === names.length && existing.every((row) => row.datistemplate === true)) return true
      for (const row of existing) await dropDatabaseIn(session, String(row.datname))
      for (const name of names) {
        await session.query(`CREATE DATABASE ${quoteIdentifier(name)}`)
        await markOwner(session, name)
      }
      try {
        await options.prepare(names.map((name) => urlForDatabase(url, name)))
      } catch (cause) {
        for (const name of names) await dropDatabaseIn(session, name).catch(() => {})
        throw new TestDatabaseError({
          reason: "TemplatePrepareFailed",
          message:
            `Preparing template database${names.length > 1 ? "s" : ""} ${names.join(", ")} failed: ` +
            `${describeError(cause)}. The half-prepared database${names.length > 1 ? "s were" : " was"} ` +
            "dropped; fix the preparation (see cause) and run again.",
          database: names.join(","),
          cause,
        })
      }
      for (const name of names) {
        const quoted = quoteIdentifier(name)
        // No new connections, then end any the preparation left open: clones need an unused template.
        await session.query(`ALTER DATABASE ${quoted} WITH ALLOW_CONNECTIONS false`)
        await session.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [name],
        )
      }
      // Marking comes last: it is what tells later callers the templates are complete.
      for (const name of names)
        await session.query(`ALTER DATABASE ${quoteIdentifier(name)} WITH IS_TEMPLATE true`)
      return false
    } finally {
      await session.query("SELECT pg_advisory_unlock($1, $2)", [lockHigh, lockLow]).catch(() => {})
    }
  })
  return names.map((name) => ({ name, reused }))
}

/**
 * Creates template database `options.name`, fills it with `options.prepare(url)`, disconnects everything
 * and marks it as a template; reuses it when a complete template of that name exists. Race-safe across
 * processes; see {@link createTemplates} for the details and errors.
 */
export const createTemplate = async (
  adminUrl: string,
  options: CreateTemplateOptions,
): Promise<TemplateDatabase> => {
  const url = databaseUrlFor(adminUrl, options.name)
  const [template] = await createTemplates(adminUrl, {
    names: [options.name],
    prepare: () => options.prepare(url),
  })
  return template!
}

// Clones of one template are serialized within the process; across processes, 55006 is retried.
const cloneQueues = new Map<string, Promise<unknown>>()
const cloneAttempts = 6

const serialized = <A>(key: string, task: () => Promise<A>): Promise<A> => {
  const previous = cloneQueues.get(key) ?? Promise.resolve()
  const run = previous.then(task, task)
  const tail = run.catch(() => {})
  cloneQueues.set(key, tail)
  void tail.then(() => {
    if (cloneQueues.get(key) === tail) cloneQueues.delete(key)
  })
  return run
}

/**
 * Creates a new database as a copy of `template` (`CREATE DATABASE ... TEMPLATE ...`) and returns its URL.
 * Postgres refuses the copy while anything is connected to the template (SQLSTATE 55006), so clones of
 * one template are serialized within the process and retried with back-off when another process holds
 * the template; a missing template gives `TemplateNotFound`, persistent failure `CloneFailed`.
 */
export const cloneDatabase = async (adminUrl: string, template: string, name?: string): Promise<string> => {
  const url = checkedAdminUrl(adminUrl)
  const source = validateDatabaseName(template)
  const target = name === undefined ? randomDatabaseName() : validateDatabaseName(name)
  return serialized(`${url}\n${source}`, async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        await withAdminSession(url, async (session) => {
          await session.query(
            `CREATE DATABASE ${quoteIdentifier(target)} TEMPLATE ${quoteIdentifier(source)}`,
          )
          await markOwner(session, target)
        })
        return urlForDatabase(url, target)
      } catch (cause) {
        const state = sqlStateOf(cause)
        if (state === "3D000") {
          throw new TestDatabaseError({
            reason: "TemplateNotFound",
            message: `Template database ${source} does not exist; create it with createTemplate() first.`,
            database: source,
            cause,
          })
        }
        if (state === duplicateDatabase) throw databaseFailed("create", target, cause)
        if (state !== objectInUse || attempt >= cloneAttempts) {
          throw new TestDatabaseError({
            reason: "CloneFailed",
            message:
              `Could not clone template ${source} into ${target}` +
              (state === objectInUse ? ` after ${attempt} attempts` : "") +
              `: ${describeError(cause)}. Make sure nothing stays connected to the template database.`,
            database: target,
            cause,
          })
        }
        await sleep(50 * 2 ** attempt)
      }
    }
  })
}

/** The databases one test (or test file) works in. */
export interface TestDatabases {
  /** The layout: in `single` mode `pgmqUrl === primaryUrl`. */
  readonly mode: TestDbMode
  /** What `DATABASE_URL` should be for the code under test. */
  readonly primaryUrl: string
  /** What `PGMQ_DATABASE_URL` should be; equal to `primaryUrl` in `single` mode. */
  readonly pgmqUrl: string
  /** Drops the databases, disconnecting anything still connected; calling it again does nothing. */
  readonly drop: () => Promise<void>
}

/** Options of {@link createTestDatabases}. */
export interface CreateTestDatabasesOptions {
  /** `single` or `split`; default from `AWA_TEST_DB_MODE`, else `single`. */
  readonly mode?: TestDbMode
  /** Template to clone the primary database from (in `single` mode, the only database); else empty. */
  readonly primaryTemplate?: string
  /** Template to clone the pgmq database from in `split` mode; ignored in `single` mode; else empty. */
  readonly pgmqTemplate?: string
  /** Where to read `AWA_TEST_DB_MODE`; default `process.env`. */
  readonly env?: TestEnvironment
}

const createOrClone = (adminUrl: string, template: string | undefined): Promise<string> =>
  template === undefined ? createDatabase(adminUrl) : cloneDatabase(adminUrl, template)

/**
 * Creates the isolated databases for one test or test file on the server behind `adminUrl`: in `single`
 * mode one database (`pgmqUrl === primaryUrl`), in `split` mode two distinct ones; each cloned from the
 * given template or else empty. Call `drop()` when done.
 */
export const createTestDatabases = async (
  adminUrl: string,
  options: CreateTestDatabasesOptions = {},
): Promise<TestDatabases> => {
  const mode = parseTestDbMode(options.mode, "mode") ?? testDbModeFromEnv(options.env)
  const primaryUrl = await createOrClone(adminUrl, options.primaryTemplate)
  let pgmqUrl = primaryUrl
  if (mode === "split") {
    try {
      pgmqUrl = await createOrClone(adminUrl, options.pgmqTemplate)
    } catch (error) {
      await dropDatabase(adminUrl, primaryUrl).catch(() => {})
      throw error
    }
  }
  let dropping: Promise<void> | undefined
  return {
    mode,
    primaryUrl,
    pgmqUrl,
    drop: () => {
      dropping ??= Promise.all(
        [...new Set([primaryUrl, pgmqUrl])].map((url) => dropDatabase(adminUrl, url)),
      ).then(() => undefined)
      return dropping
    },
  }
}

/** Options of {@link sweepTestDatabases}. */
export interface SweepOptions {
  /** Complete templates to keep whatever their age (the ones this run uses). */
  readonly keepTemplates?: ReadonlyArray<string>
  /** Complete templates older than this whose maker is gone are dropped (default 24 hours). */
  readonly templateMaxAgeMs?: number
  /** This host's name, as owners record it (default `os.hostname()`). */
  readonly host?: string
  /** Whether a pid on this host is alive (default: `process.kill(pid, 0)`). */
  readonly isAlive?: (pid: number) => boolean
}

/** What {@link sweepTestDatabases} dropped. */
export interface SweepResult {
  /** The databases dropped, by name. */
  readonly dropped: ReadonlyArray<string>
}

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Drops test databases that a killed run left behind on a persistent server (one named by
 * `DATABASE_URL`, which outlives runs): `awa_test_*` databases whose owning process, recorded on this host
 * when they were made, is gone, and `awa_tpl_*` templates whose maker is gone and that are either
 * incomplete (their preparation was interrupted) or complete but older than `templateMaxAgeMs` and not in
 * `keepTemplates` (templates of migrations that have since changed; one still wanted is simply made
 * again). Databases owned by a live process or by another host, templates someone is connected to, and
 * databases without an owner record (made by hand, by an older version, or being made right now) are left
 * alone. Resolves to what was dropped; a database that cannot be dropped is skipped (a later sweep retries).
 */
export const sweepTestDatabases = async (
  adminUrl: string,
  options: SweepOptions = {},
): Promise<SweepResult> => {
  const host = options.host ?? hostname()
  const isAlive = options.isAlive ?? processAlive
  const keep = new Set(options.keepTemplates ?? [])
  const maxAge = options.templateMaxAgeMs ?? 24 * 3_600_000
  const dropped: Array<string> = []
  await withAdminSession(checkedAdminUrl(adminUrl), async (session) => {
    const rows = await session.query(
      `SELECT d.datname, d.datistemplate, shobj_description(d.oid, 'pg_database') AS comment,
         (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)::integer AS sessions
       FROM pg_database d
       WHERE d.datname LIKE 'awa\\_test\\_%' OR d.datname LIKE 'awa\\_tpl\\_%'
       ORDER BY d.datname`,
    )
    for (const row of rows) {
      const name = String(row.datname)
      const owner = parseDatabaseOwner(row.comment as string | null)
      const sessions = Number(row.sessions)
      const gone = owner !== undefined && owner.host === host && !isAlive(owner.pid)
      let drop: boolean
      if (name.startsWith("awa_tpl_")) {
        const old = owner !== undefined && Date.now() - owner.created.getTime() > maxAge
        drop = gone && sessions === 0 && (row.datistemplate !== true || (old && !keep.has(name)))
      } else {
        drop = gone
      }
      if (!drop) continue
      try {
        await dropDatabaseIn(session, name)
        dropped.push(name)
      } catch {
        // Someone took it meanwhile, or it is already gone: leave it to a later sweep.
      }
    }
  })
  return { dropped }
}
