// Statements of the storage state (awa.runtime_state's storage columns) and the runtime registry.
import { statement } from "../../PgExecutor.js"

/** Reads the storage state row, the canonical backlog and whether queue storage holds work. */
export const readStorageState = statement(
  "storage_state_read",
  `SELECT s.storage_state, s.queue_storage_schema, s.changed_by, s.changed_at,
     awa.canonical_backlog()::text AS canonical_backlog,
     awa.queue_storage_holds_work(coalesce(s.queue_storage_schema, $1)) AS queue_storage_holds_work,
     awa.queue_storage_substrate_present(coalesce(s.queue_storage_schema, $1)) AS substrate_present
   FROM awa.runtime_state s`,
)

/** Reads only the state and its schema (the resolver's cheap refresh). */
export const readStorageStateOnly = statement(
  "storage_state_only",
  `SELECT s.storage_state, s.queue_storage_schema FROM awa.runtime_state s`,
)

/** Lists the runtimes seen within $1 seconds, newest first. */
export const listLiveRuntimes = statement(
  "runtime_instances_live",
  `SELECT r.id, r.host, r.pid, r.version, r.engines, r.started_at, r.last_seen_at
   FROM awa.runtime_instances r WHERE r.last_seen_at >= now() - make_interval(secs => $1)
   ORDER BY r.last_seen_at DESC, r.id`,
)

/** canonical -> prepared for schema $1 by actor $2. */
export const prepare = statement("storage_prepare", `SELECT storage_state FROM awa.storage_prepare($1, $2)`)

/** prepared -> mixed by actor $1, runtimes live within $2 seconds. */
export const enterMixed = statement(
  "storage_enter_mixed",
  `SELECT storage_state FROM awa.storage_enter_mixed($1, make_interval(secs => $2))`,
)

/** mixed -> active by actor $1, runtimes live within $2 seconds. */
export const finalize = statement(
  "storage_finalize",
  `SELECT storage_state FROM awa.storage_finalize($1, make_interval(secs => $2))`,
)

/** prepared or mixed -> canonical by actor $1. */
export const abort = statement("storage_abort", `SELECT storage_state FROM awa.storage_abort($1)`)

/**
 * Activates queue storage in schema $1 when the database is fresh (actor $2); returns the outcome
 * (`activated`, `not-fresh` or `substrate-missing`), the state after it, its schema and the reason.
 */
export const activateFresh = statement(
  "storage_activate_fresh",
  `SELECT f.outcome, f.storage_state, f.queue_storage_schema, f.reason FROM awa.storage_activate_fresh($1, $2) f`,
)

/** canonical -> canonical, recorded by actor $1: the database stays canonical (no fresh activation). */
export const keepCanonical = statement(
  "storage_keep_canonical",
  `SELECT storage_state FROM awa.storage_keep_canonical(coalesce($1, current_user))`,
)

/** The state, its schema, and whether the canonical engine holds jobs (awa.jobs or awa.dlq rows). */
export const readNamedEngineCheck = statement(
  "storage_named_engine_check",
  `SELECT s.storage_state, s.queue_storage_schema,
     EXISTS (SELECT 1 FROM awa.jobs) OR EXISTS (SELECT 1 FROM awa.dlq) AS canonical_holds_jobs
   FROM awa.runtime_state s`,
)

/** Registers or renews runtime $1 (host $2, pid $3, version $4, engines $5). */
export const registerRuntime = statement(
  "runtime_register",
  `SELECT awa.register_runtime($1, $2, $3, $4, $5::text[])`,
)

/** Removes runtime $1 (a clean stop). */
export const unregisterRuntime = statement(
  "runtime_unregister",
  `DELETE FROM awa.runtime_instances WHERE id = $1`,
)

/** Which of the job ids $1 live in the canonical engine (awa.jobs). */
export const canonicalIds = statement(
  "storage_canonical_ids",
  `SELECT j.id::text AS id FROM awa.jobs j WHERE j.id = ANY ($1::bigint[])`,
)

/** The canonical jobs holding any of the unique keys $1 (hex): key, id and state. */
export const canonicalUniqueHolders = statement(
  "storage_canonical_unique_holders",
  `SELECT encode(j.unique_key, 'hex') AS unique_key, j.id::text AS id, j.state::text AS state
   FROM awa.jobs j
   WHERE j.unique_key = ANY (SELECT decode(k, 'hex') FROM unnest($1::text[]) AS k)
     AND j.state = ANY (j.unique_states)`,
)
