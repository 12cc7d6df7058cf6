/**
 * Prepared templates for test databases, keyed by what they contain: migrate once per server, then clone
 * a fresh copy per test file or test.
 */
import { createHash } from "node:crypto"
import type { TestEnvironment } from "./PostgresServer.js"
import { TestDatabaseError } from "./TestDatabaseError.js"
import {
  createTemplates,
  createTestDatabases,
  parseTestDbMode,
  type TestDatabases,
  type TestDbMode,
  testDbModeFromEnv,
} from "./TestDatabases.js"

/** The template databases handed to {@link TemplatePreparation.prepare}, laid out like a test's databases. */
export interface TemplateTargets {
  /** `single`: `pgmqUrl === primaryUrl`; `split`: two distinct template databases. */
  readonly mode: TestDbMode
  /** The template that becomes each test's primary database. */
  readonly primaryUrl: string
  /** The template that becomes each test's pgmq database (the primary one in `single` mode). */
  readonly pgmqUrl: string
}

/**
 * How to fill template databases, e.g. with the awa migrator. Every hook is optional and they run in
 * this order on the new, empty templates: `preparePrimary(primaryUrl)`, `preparePgmq(pgmqUrl)` (in
 * `single` mode on the same database), then `prepare({ mode, primaryUrl, pgmqUrl })`, the natural fit for
 * `migrate({ databaseUrl: primaryUrl, pgmqDatabaseUrl: pgmqUrl, withPgmq: true })`. Hooks must close the
 * connections they open.
 */
export interface TemplatePreparation {
  /**
   * Names what the hooks install; templates are reused across processes (and, on a persistent
   * `DATABASE_URL` server, across runs) while the key stays the same, so include a version or checksum
   * of the migrations in it.
   */
  readonly key: string
  /** Fills the primary template. */
  readonly preparePrimary?: (url: string) => Promise<void>
  /** Fills the pgmq template (the primary template in `single` mode). */
  readonly preparePgmq?: (url: string) => Promise<void>
  /** Fills both templates in one call. */
  readonly prepare?: (targets: TemplateTargets) => Promise<void>
}

/** Template database names for one key and mode, as made by {@link ensureTestTemplates}. */
export interface TestTemplates {
  /** The mode the templates are laid out for. */
  readonly mode: TestDbMode
  /** Template of the primary database (of the only database in `single` mode). */
  readonly primaryTemplate: string
  /** Template of the pgmq database in `split` mode; absent in `single` mode. */
  readonly pgmqTemplate?: string
  /** `true` when complete templates already existed and no hook ran. */
  readonly reused: boolean
}

const maxSlugLength = 32

/**
 * The template database names derived from `key`: `awa_tpl_<slug>_<hash>` in `single` mode, and the same
 * with `_p` (primary) and `_q` (pgmq) suffixes in `split` mode; the slug keeps names readable and the hash
 * (of the whole key) keeps them distinct. Throws `InvalidName` for an empty key.
 */
export const templateNamesFor = (
  key: string,
  mode: TestDbMode,
): { readonly primary: string; readonly pgmq?: string } => {
  if (key.trim() === "") {
    throw new TestDatabaseError({
      reason: "InvalidName",
      message:
        "A template key must not be empty: name what the templates contain, with a version or checksum.",
    })
  }
  const slug = key
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, maxSlugLength)
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 12)
  const base = `awa_tpl_${slug === "" ? "" : `${slug}_`}${hash}`
  return mode === "single" ? { primary: base } : { primary: `${base}_p`, pgmq: `${base}_q` }
}

// Per process: later test files in the same process skip even the lock round trip.
const ensured = new Map<string, Promise<TestTemplates>>()
const memoKeyOf = (adminUrl: string, mode: TestDbMode, key: string): string => `${adminUrl}\n${mode}\n${key}`

/**
 * Makes sure the templates for `preparation.key` exist on the server behind `adminUrl` in the given mode
 * (default from `AWA_TEST_DB_MODE`), running the hooks only when they do not; safe when many processes
 * race (see {@link createTemplates}). Memoized per process, except after a failure.
 */
export const ensureTestTemplates = (
  adminUrl: string,
  preparation: TemplatePreparation,
  mode: TestDbMode = testDbModeFromEnv(),
): Promise<TestTemplates> => {
  const checkedMode = parseTestDbMode(mode, "mode") ?? "single"
  const names = templateNamesFor(preparation.key, checkedMode)
  const memoKey = memoKeyOf(adminUrl, checkedMode, preparation.key)
  const known = ensured.get(memoKey)
  if (known !== undefined) return known
  const templateNames = names.pgmq === undefined ? [names.primary] : [names.primary, names.pgmq]
  const pending = createTemplates(adminUrl, {
    names: templateNames,
    prepare: async (urls) => {
      const primaryUrl = urls[0]!
      const pgmqUrl = urls[1] ?? primaryUrl
      await preparation.preparePrimary?.(primaryUrl)
      await preparation.preparePgmq?.(pgmqUrl)
      await preparation.prepare?.({ mode: checkedMode, primaryUrl, pgmqUrl })
    },
  }).then(
    ([primary]): TestTemplates => ({
      mode: checkedMode,
      primaryTemplate: names.primary,
      ...(names.pgmq === undefined ? {} : { pgmqTemplate: names.pgmq }),
      reused: primary?.reused ?? false,
    }),
  )
  ensured.set(memoKey, pending)
  pending.catch(() => ensured.delete(memoKey))
  return pending
}

/** Options of {@link createPreparedTestDatabases}. */
export interface PreparedTestDatabasesOptions {
  /** `single` or `split`; default from `AWA_TEST_DB_MODE`, else `single`. */
  readonly mode?: TestDbMode
  /** How to fill the templates the databases are cloned from; without it the databases are empty. */
  readonly template?: TemplatePreparation
  /** Where to read `AWA_TEST_DB_MODE`; default `process.env`. */
  readonly env?: TestEnvironment
}

/**
 * Creates a test's isolated databases on the server behind `adminUrl`, cloned from the templates of
 * `options.template` (made first if needed, see {@link ensureTestTemplates}), or empty without a template.
 * The framework-neutral core of the vitest fixtures; call `drop()` when done.
 */
export const createPreparedTestDatabases = async (
  adminUrl: string,
  options: PreparedTestDatabasesOptions = {},
): Promise<TestDatabases> => {
  const mode = parseTestDbMode(options.mode, "mode") ?? testDbModeFromEnv(options.env)
  if (options.template === undefined) return createTestDatabases(adminUrl, { mode })
  const template = options.template
  const cloneFromTemplates = async () => {
    const templates = await ensureTestTemplates(adminUrl, template, mode)
    return createTestDatabases(adminUrl, {
      mode,
      primaryTemplate: templates.primaryTemplate,
      ...(templates.pgmqTemplate === undefined ? {} : { pgmqTemplate: templates.pgmqTemplate }),
    })
  }
  try {
    return await cloneFromTemplates()
  } catch (error) {
    // Someone dropped the templates after this process made or saw them: forget them and make them again.
    if (!(error instanceof TestDatabaseError && error.reason === "TemplateNotFound")) throw error
    ensured.delete(memoKeyOf(adminUrl, mode, template.key))
    return cloneFromTemplates()
  }
}
