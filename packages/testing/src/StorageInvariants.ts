/**
 * Invariants of a database whose jobs may live in either storage engine (a move from the canonical engine
 * to queue storage, through the `mixed` state): no job lost, none in two places, none completed twice, and
 * never two live holders of one unique key across both engines. Each check reads one consistent snapshot
 * (a single statement) and returns the violations it found as text, so a test can call it repeatedly while
 * producers and workers run, and fail with everything that went wrong at once; `assertStorageInvariants`
 * throws `StorageInvariantViolation` with them.
 */
import { validateIdentifier } from "@awa/model/Identifier"
import { type Db, statement, toExecutor } from "@awa/runtime/PgExecutor"

/** Where a job is and in which state: `dead_lettered` for a DLQ entry. */
export interface JobPlace {
  /** The job id (a bigint, as a decimal string). */
  readonly id: string
  /** The engine holding it. */
  readonly engine: "canonical" | "queue_storage"
  /** Its state there, or `dead_lettered` for a DLQ entry. */
  readonly state: string
}

/** A unique key held by more than one live job across the engines. */
export interface UniqueHolderConflict {
  /** The key, as hex. */
  readonly uniqueKey: string
  /** The holders, as `engine:id`. */
  readonly holders: ReadonlyArray<string>
}

/** Thrown by {@link assertStorageInvariants}: lists every violation found. */
export class StorageInvariantViolation extends Error {
  /** Each violation, one sentence each. */
  readonly violations: ReadonlyArray<string>

  constructor(violations: ReadonlyArray<string>) {
    super(
      `storage invariants violated (${violations.length}):\n- ${violations.join("\n- ")}\n` +
        "Read the job ids above with `awa job get ID` in both engines to see where each one went.",
    )
    this.name = "StorageInvariantViolation"
    this.violations = violations
  }
}

// A bad schema name is refused before it reaches SQL (it is written into the statement text).
const schemaOf = (schema: string | undefined): string => {
  const checked = validateIdentifier("queue-storage schema name", schema ?? "awa")
  if (typeof checked !== "string") throw checked
  return checked
}

/**
 * Every job in both engines, in one snapshot: canonical `awa.jobs` and `awa.dlq`, and the queue-storage
 * schema's read model and DLQ (default schema `awa`). A job id listed more than once is in two places.
 */
export const readJobPlaces = async (db: Db, schema?: string): Promise<ReadonlyArray<JobPlace>> => {
  const s = `"${schemaOf(schema)}"`
  const rows = await toExecutor(db).query<{ id: string; engine: JobPlace["engine"]; state: string }>(
    "read job places (storage invariants)",
    statement(
      `invariants_job_places_${schemaOf(schema)}`,
      `SELECT j.id::text AS id, 'canonical' AS engine, j.state::text AS state FROM awa.jobs j
       UNION ALL SELECT d.id::text, 'canonical', 'dead_lettered' FROM awa.dlq d
       UNION ALL SELECT q.id::text, 'queue_storage', q.state FROM ${s}.job_rows(NULL) q
       UNION ALL SELECT e.id::text, 'queue_storage', 'dead_lettered' FROM ${s}.dlq_entries e`,
      { prepared: false },
    ),
    [],
  )
  return rows
}

/**
 * Unique keys with more than one live holder, in one snapshot: a canonical job holds its key while its state
 * is one of its unique states; a queue-storage job while its `unique_claims` row exists.
 */
export const findUniqueHolderConflicts = async (
  db: Db,
  schema?: string,
): Promise<ReadonlyArray<UniqueHolderConflict>> => {
  const s = `"${schemaOf(schema)}"`
  const rows = await toExecutor(db).query<{ unique_key: string; holders: Array<string> }>(
    "find unique holder conflicts (storage invariants)",
    statement(
      `invariants_unique_holders_${schemaOf(schema)}`,
      `SELECT encode(h.k, 'hex') AS unique_key, array_agg(DISTINCT h.holder ORDER BY h.holder) AS holders
       FROM (
         SELECT j.unique_key AS k, 'canonical:' || j.id AS holder FROM awa.jobs j
         WHERE j.unique_key IS NOT NULL AND j.state = ANY (j.unique_states)
         UNION ALL
         SELECT u.unique_key, 'queue_storage:' || u.job_id FROM ${s}.unique_claims u
       ) h
       GROUP BY h.k HAVING count(DISTINCT h.holder) > 1`,
      { prepared: false },
    ),
    [],
  )
  return rows.map((r) => ({ uniqueKey: r.unique_key, holders: r.holders }))
}

/**
 * Checks that every expected job is in exactly one place and in one of the states allowed for it
 * (`expected`: id -> allowed states, `dead_lettered` for the DLQ), and that no job is in two places.
 * Returns the violations.
 */
export const checkNoJobLost = (
  places: ReadonlyArray<JobPlace>,
  expected: ReadonlyMap<string, ReadonlyArray<string>>,
): ReadonlyArray<string> => {
  const byId = new Map<string, Array<JobPlace>>()
  for (const p of places) {
    const seen = byId.get(p.id)
    if (seen === undefined) byId.set(p.id, [p])
    else seen.push(p)
  }
  const violations: Array<string> = []
  for (const [id, at] of byId) {
    if (at.length > 1)
      violations.push(
        `job ${id} is in ${at.length} places: ${at.map((p) => `${p.engine}/${p.state}`).join(", ")}`,
      )
  }
  for (const [id, allowed] of expected) {
    const at = byId.get(id)
    if (at === undefined) {
      violations.push(`job ${id} is lost: in neither engine nor any DLQ (expected ${allowed.join(" or ")})`)
      continue
    }
    const place = at[0]!
    if (!allowed.includes(place.state))
      violations.push(`job ${id} is ${place.engine}/${place.state}, expected ${allowed.join(" or ")}`)
  }
  return violations
}

/**
 * Checks a completion record (one job id per successful run, in any order) against the jobs that must have
 * completed: none completed twice, none completed that was not expected to, every expected one completed.
 */
export const checkCompletedOnce = (
  completions: ReadonlyArray<string>,
  mustComplete: ReadonlySet<string>,
  mayComplete: ReadonlySet<string> = mustComplete,
): ReadonlyArray<string> => {
  const counts = new Map<string, number>()
  for (const id of completions) counts.set(id, (counts.get(id) ?? 0) + 1)
  const violations: Array<string> = []
  for (const [id, n] of counts) {
    if (n > 1) violations.push(`job ${id} completed ${n} times`)
    if (!mustComplete.has(id) && !mayComplete.has(id))
      violations.push(`job ${id} completed but was not expected to`)
  }
  for (const id of mustComplete) if (!counts.has(id)) violations.push(`job ${id} never completed`)
  return violations
}

/** Throws {@link StorageInvariantViolation} when any of the violation lists is not empty. */
export const assertStorageInvariants = (...violations: ReadonlyArray<ReadonlyArray<string>>): void => {
  const all = violations.flat()
  if (all.length > 0) throw new StorageInvariantViolation(all)
}

/** The unique-key check as violation sentences (see {@link findUniqueHolderConflicts}). */
export const checkUniqueHolders = async (db: Db, schema?: string): Promise<ReadonlyArray<string>> =>
  (await findUniqueHolderConflicts(db, schema)).map(
    (c) => `unique key ${c.uniqueKey} has ${c.holders.length} live holders: ${c.holders.join(", ")}`,
  )
