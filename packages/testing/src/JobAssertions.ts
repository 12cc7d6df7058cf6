/**
 * Assertions about enqueued jobs, in the style of River's `rivertest.RequireInserted`: find jobs by kind,
 * match only the options given, and on failure show what was expected and every job found instead.
 * They read through the engine's public admin API, so they work against a pool and, given a client inside
 * an open transaction, see that transaction's own uncommitted jobs.
 */
import type { AnyJobDefinition, JobArgsOf } from "@awa/model/JobDefinition"
import type { JobState } from "@awa/model/JobState"
import { type Admin, makeAdmin } from "@awa/runtime/Admin"
import type { Engine, EngineName, Job, JobFilter } from "@awa/runtime/Engine"
import type { Db } from "@awa/runtime/PgExecutor"
import { Equal, Result } from "effect"
import { JobAssertionError } from "./JobAssertionError.js"
import { resolveTestEngine } from "./TestEngine.js"

/** A job kind to look for: its name, or its definition (which also types `args`). */
export type KindOrDefinition = string | AnyJobDefinition

/** A deep partial of `T`: objects may leave out any key at any depth; arrays are compared whole. */
export type DeepPartial<T> =
  T extends ReadonlyArray<unknown>
    ? T
    : T extends object
      ? { readonly [K in keyof T]?: DeepPartial<T[K]> }
      : T

/**
 * What a job must look like; only the fields given are checked. `args` is a subset: every key given must
 * be present with an equal value (objects compared recursively, arrays and other values exactly), other
 * keys are ignored, and a key given as `undefined` must be absent. When the kind is given as a definition,
 * the stored args are decoded with it first and compared with the expected values as the handler would
 * see them (a `NumberFromString` field matches the number, a `Date` field a `Date`); given a kind name,
 * they are compared with the stored JSON, so expected values are JSON-normalized first (a `Date` becomes
 * its ISO string). `runAt` is an inclusive window for the job's (next) run time.
 */
export interface JobMatch<K extends KindOrDefinition = string> {
  /** The queue. */
  readonly queue?: string
  /** The priority, 1..4. */
  readonly priority?: number
  /** A subset of the args. */
  readonly args?: K extends AnyJobDefinition ? DeepPartial<JobArgsOf<K>> : unknown
  /** The state, or any of several states. */
  readonly state?: JobState | ReadonlyArray<JobState>
  /** The window the run time must fall in (both ends inclusive, either may be left out). */
  readonly runAt?: { readonly from?: Date; readonly to?: Date }
}

/** One expected job of {@link expectManyInserted}: a kind and what the job must look like. */
export interface ExpectedJob extends JobMatch<string> {
  /** The kind, or its definition. */
  readonly kind: KindOrDefinition
}

/** Options of the assertions. */
export interface AssertionOptions {
  /** The engine (default: `AWA_TEST_ENGINE`, else canonical). */
  readonly engine?: EngineName | Engine
}

const kindName = (kind: KindOrDefinition): string => (typeof kind === "string" ? kind : kind.kind)

const definitionOf = (kind: KindOrDefinition): AnyJobDefinition | undefined =>
  typeof kind === "string" ? undefined : kind

const quote = (value: string): string => JSON.stringify(value)

const json = (value: unknown, max = 200): string => {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > max ? `${text.slice(0, max)}…` : text
}

// Only object literals (and parsed JSON objects) are matched key by key; a Date, a Map or a class instance
// is a value compared whole.
const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

// Canonical JSON (sorted keys) so key order never decides equality.
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    isPlainObject(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  )

const pathOf = (path: string, key: string): string =>
  /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${quote(key)}]`

const normalizeJson = (value: unknown): unknown => {
  try {
    return JSON.parse(JSON.stringify(value) ?? "null") as unknown
  } catch (error) {
    throw new TypeError(
      `The expected args cannot be compared with stored jobs: they are not JSON-serializable (${String(error)}).`,
    )
  }
}

/** Whole-value equality of an expected value and an actual one, in one of the two comparison modes. */
type ValueEquality = (expected: unknown, actual: unknown) => boolean

// Stored JSON: both sides as canonical JSON.
const jsonEqual: ValueEquality = (expected, actual) =>
  canonical(normalizeJson(expected)) === canonical(actual)

// Decoded values: dates by instant, arrays and plain objects element by element, Effect data by Equal.
const decodedEqual: ValueEquality = (expected, actual) => {
  if (expected instanceof Date || actual instanceof Date) {
    return expected instanceof Date && actual instanceof Date && expected.getTime() === actual.getTime()
  }
  if (Array.isArray(expected) || Array.isArray(actual)) {
    return (
      Array.isArray(expected) &&
      Array.isArray(actual) &&
      expected.length === actual.length &&
      expected.every((item, i) => decodedEqual(item, actual[i]))
    )
  }
  if (isPlainObject(expected) && isPlainObject(actual)) {
    const keys = Object.keys(expected).filter((k) => expected[k] !== undefined)
    const actualKeys = Object.keys(actual).filter((k) => actual[k] !== undefined)
    return (
      keys.length === actualKeys.length &&
      keys.every((k) => k in actual && decodedEqual(expected[k], actual[k]))
    )
  }
  return Equal.equals(expected, actual)
}

const argsDifferences = (
  expected: unknown,
  actual: unknown,
  path: string,
  equal: ValueEquality,
): Array<string> => {
  if (isPlainObject(expected)) {
    if (!isPlainObject(actual))
      return [`${path}: expected an object containing ${json(expected)}, got ${json(actual)}`]
    const out: Array<string> = []
    for (const [key, value] of Object.entries(expected)) {
      const at = pathOf(path, key)
      if (value === undefined) {
        // undefined in an expectation means "absent", never "anything".
        if (key in actual && actual[key] !== undefined)
          out.push(`${at}: expected absent, got ${json(actual[key])}`)
      } else if (!(key in actual)) out.push(`${at}: missing, expected ${json(value)}`)
      else out.push(...argsDifferences(value, actual[key], at, equal))
    }
    return out
  }
  return equal(expected, actual) ? [] : [`${path}: expected ${json(expected)}, got ${json(actual)}`]
}

/** The differences between expected args and a job's args: decoded with `definition` when there is one. */
const argsDifferencesOf = (
  expected: unknown,
  job: Job,
  definition: AnyJobDefinition | undefined,
): Array<string> => {
  if (definition === undefined || definition.kind !== job.kind) {
    return argsDifferences(expected, job.args, "args", jsonEqual)
  }
  const decoded = definition.decodeArgs(job.args)
  if (Result.isFailure(decoded)) {
    return [
      `args: the stored args do not decode with the definition of ${quote(definition.kind)}: ${decoded.failure.message}`,
    ]
  }
  return argsDifferences(expected, decoded.success, "args", decodedEqual)
}

// Shows expectations with `undefined` keys (which JSON would drop) as "absent".
const expectedShown = (args: unknown): unknown =>
  isPlainObject(args)
    ? Object.fromEntries(
        Object.entries(args).map(([k, v]) => [k, v === undefined ? "<absent>" : expectedShown(v)]),
      )
    : args

const statesOf = (state: JobState | ReadonlyArray<JobState>): ReadonlyArray<JobState> =>
  typeof state === "string" ? [state] : state

/** The fields of `job` that do not match, one line each; empty when it matches. */
const differences = (
  job: Job,
  kind: string | undefined,
  match: JobMatch<KindOrDefinition>,
  definition: AnyJobDefinition | undefined,
): Array<string> => {
  const out: Array<string> = []
  if (kind !== undefined && job.kind !== kind)
    out.push(`kind: expected ${quote(kind)}, got ${quote(job.kind)}`)
  if (match.queue !== undefined && job.queue !== match.queue)
    out.push(`queue: expected ${quote(match.queue)}, got ${quote(job.queue)}`)
  if (match.priority !== undefined && job.priority !== match.priority)
    out.push(`priority: expected ${match.priority}, got ${job.priority}`)
  if (match.state !== undefined) {
    const states = statesOf(match.state)
    if (!states.includes(job.state)) out.push(`state: expected ${states.join(" or ")}, got ${job.state}`)
  }
  const from = match.runAt?.from
  const to = match.runAt?.to
  if (from !== undefined && job.runAt.getTime() < from.getTime())
    out.push(`runAt: expected at or after ${from.toISOString()}, got ${job.runAt.toISOString()}`)
  if (to !== undefined && job.runAt.getTime() > to.getTime())
    out.push(`runAt: expected at or before ${to.toISOString()}, got ${job.runAt.toISOString()}`)
  if (match.args !== undefined) out.push(...argsDifferencesOf(match.args, job, definition))
  return out
}

/** "kind "x" with queue "q", priority 1, ..." */
const describeExpectation = (kind: string, match: JobMatch<KindOrDefinition>): string => {
  const parts: Array<string> = []
  if (match.queue !== undefined) parts.push(`queue ${quote(match.queue)}`)
  if (match.priority !== undefined) parts.push(`priority ${match.priority}`)
  if (match.state !== undefined) parts.push(`state ${statesOf(match.state).join(" or ")}`)
  if (match.runAt?.from !== undefined || match.runAt?.to !== undefined) {
    parts.push(
      `runAt within [${match.runAt.from?.toISOString() ?? "-∞"}, ${match.runAt.to?.toISOString() ?? "+∞"}]`,
    )
  }
  if (match.args !== undefined) parts.push(`args containing ${json(expectedShown(match.args))}`)
  return `kind ${quote(kind)}${parts.length === 0 ? "" : ` with ${parts.join(", ")}`}`
}

const describeJob = (job: Job): string =>
  `#${job.id} kind ${quote(job.kind)}, queue ${quote(job.queue)}, priority ${job.priority}, state ${job.state}, ` +
  `runAt ${job.runAt.toISOString()}, args ${json(job.args)}`

const maxListed = 25

const listing = (jobs: ReadonlyArray<Job>, detail: (job: Job) => ReadonlyArray<string>): string => {
  const lines: Array<string> = []
  for (const job of jobs.slice(0, maxListed)) {
    lines.push(`  ${describeJob(job)}`)
    for (const line of detail(job)) lines.push(`      ${line}`)
  }
  if (jobs.length > maxListed) lines.push(`  … and ${jobs.length - maxListed} more`)
  return lines.join("\n")
}

const pageSize = 1000

const listAll = async (admin: Admin, db: Db, filter: JobFilter): Promise<Array<Job>> => {
  const jobs: Array<Job> = []
  let cursor: string | null = null
  do {
    const page = await admin.listJobs(db, filter, { limit: pageSize, ...(cursor === null ? {} : { cursor }) })
    jobs.push(...page.items)
    cursor = page.nextCursor
  } while (cursor !== null)
  return jobs
}

// With no job of the kind, the likeliest mistake is a different kind: say which kinds exist.
const otherKinds = async (admin: Admin, db: Db): Promise<string> => {
  const page = await admin.listJobs(db, {}, { limit: pageSize })
  if (page.items.length === 0) return "There are no jobs at all."
  const counts = new Map<string, number>()
  for (const job of page.items) counts.set(job.kind, (counts.get(job.kind) ?? 0) + 1)
  const kinds = [...counts.entries()].map(([kind, n]) => `${quote(kind)} (${n})`).join(", ")
  return `Jobs of other kinds${page.nextCursor === null ? "" : ` (among the first ${pageSize})`}: ${kinds}.`
}

/**
 * Asserts that exactly one job of `kind` matches `match` (only the fields given are checked) and returns
 * it. Fails with a {@link JobAssertionError} when none matches (listing every job of the kind with the
 * fields that differ, or the kinds that do exist) or when several match (listing them: use
 * {@link expectManyInserted}, or narrow the match).
 */
export const expectInserted = async <K extends KindOrDefinition>(
  db: Db,
  kind: K,
  match: JobMatch<K> = {},
  options: AssertionOptions = {},
): Promise<Job> => {
  const admin = makeAdmin({ engine: resolveTestEngine(options.engine) })
  const name = kindName(kind)
  const jobs = await listAll(admin, db, { kind: name })
  const matching = jobs.filter((job) => differences(job, undefined, match, definitionOf(kind)).length === 0)
  if (matching.length === 1) return matching[0]!
  const expected = describeExpectation(name, match)
  const expectation = { kind: name, ...match }
  if (matching.length > 1) {
    throw new JobAssertionError(
      "expectInserted",
      `expectInserted: expected one job of ${expected}, but ${matching.length} match ` +
        "(use expectManyInserted, or narrow the match):\n" +
        listing(matching, () => []),
      expectation,
      matching,
    )
  }
  if (jobs.length === 0) {
    throw new JobAssertionError(
      "expectInserted",
      `expectInserted: expected one job of ${expected}, but there is no job of kind ${quote(name)}. ` +
        (await otherKinds(admin, db)),
      expectation,
      jobs,
    )
  }
  throw new JobAssertionError(
    "expectInserted",
    `expectInserted: expected one job of ${expected}, but ` +
      `${jobs.length === 1 ? "the only job of that kind does not match" : `none of the ${jobs.length} jobs of that kind match`}:\n` +
      listing(jobs, (job) => differences(job, undefined, match, definitionOf(kind))),
    expectation,
    jobs,
  )
}

/**
 * Asserts that no job of `kind` matches `match` (only the fields given are checked; without them, that
 * there is no job of the kind at all). Fails with a {@link JobAssertionError} listing the matching jobs.
 */
export const expectNotInserted = async <K extends KindOrDefinition>(
  db: Db,
  kind: K,
  match: JobMatch<K> = {},
  options: AssertionOptions = {},
): Promise<void> => {
  const admin = makeAdmin({ engine: resolveTestEngine(options.engine) })
  const name = kindName(kind)
  const matching = (await listAll(admin, db, { kind: name })).filter(
    (job) => differences(job, undefined, match, definitionOf(kind)).length === 0,
  )
  if (matching.length === 0) return
  throw new JobAssertionError(
    "expectNotInserted",
    `expectNotInserted: expected no job of ${describeExpectation(name, match)}, but found ${matching.length}:\n` +
      listing(matching, () => []),
    { kind: name, ...match },
    matching,
  )
}

/**
 * Asserts that the jobs of the kinds named in `expected`, in insertion (id) order, are exactly the
 * expected ones: as many, and the n-th job matching the n-th expectation (only the fields given are
 * checked). Jobs of other kinds are ignored. Returns the jobs in order. Fails with a
 * {@link JobAssertionError} showing the expected list and every job found, position by position, with the
 * fields that differ, missing positions and unexpected extra jobs.
 */
export const expectManyInserted = async (
  db: Db,
  expected: ReadonlyArray<ExpectedJob>,
  options: AssertionOptions = {},
): Promise<ReadonlyArray<Job>> => {
  const admin = makeAdmin({ engine: resolveTestEngine(options.engine) })
  const kinds = [...new Set(expected.map((e) => kindName(e.kind)))]
  const jobs = (await Promise.all(kinds.map((kind) => listAll(admin, db, { kind })))).flat()
  jobs.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0))
  const rows: Array<string> = []
  let ok = jobs.length === expected.length
  const positions = Math.max(jobs.length, expected.length)
  for (let i = 0; i < positions; i++) {
    const job = jobs[i]
    const want = expected[i]
    if (job === undefined) {
      ok = false
      rows.push(`  ${i + 1}. ✗ missing: ${describeExpectation(kindName(want!.kind), want!)}`)
      continue
    }
    if (want === undefined) {
      rows.push(`  ${i + 1}. ✗ ${describeJob(job)}`, `        unexpected: only ${expected.length} expected`)
      continue
    }
    const diffs = differences(job, kindName(want.kind), want, definitionOf(want.kind))
    if (diffs.length > 0) ok = false
    rows.push(`  ${i + 1}. ${diffs.length === 0 ? "✓" : "✗"} ${describeJob(job)}`)
    for (const line of diffs) rows.push(`        ${line}`)
  }
  if (ok) return jobs
  const wanted = expected.map((e, i) => `  ${i + 1}. ${describeExpectation(kindName(e.kind), e)}`)
  throw new JobAssertionError(
    "expectManyInserted",
    `expectManyInserted: expected ${expected.length} job${expected.length === 1 ? "" : "s"} of kind` +
      `${kinds.length === 1 ? "" : "s"} ${kinds.map(quote).join(", ")} in this order, but found ${jobs.length}.\n` +
      `Expected:\n${wanted.length === 0 ? "  (none)" : wanted.join("\n")}\n` +
      `Found:\n${rows.length === 0 ? "  (none)" : rows.join("\n")}`,
    expected.map((e) => ({ ...e, kind: kindName(e.kind) })),
    jobs,
  )
}
