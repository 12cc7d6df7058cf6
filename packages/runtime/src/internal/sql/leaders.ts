// Named statements for leader leases (awa.leaders), their term history (awa.leader_terms) and runtime state.
import { statement } from "../../PgExecutor.js"

// Whether the row's lease is the candidate's own live term: same candidate token, the epoch it believes it
// holds ($5, NULL when it holds none) and not expired.
const ownTerm = "l.token = excluded.token AND l.epoch = $5::bigint"
const ownLiveTerm = `${ownTerm} AND l.expires_at > now()`

/**
 * Takes or renews the lease of role $1 for holder $2 (candidate token $3) for $4 milliseconds (database
 * clock). $5 is the epoch the candidate believes it holds (NULL when none). The lease is granted when it has expired, or when the
 * holder renews its own epoch; a new term (a lease that was not the holder's live one) gets epoch + 1 and
 * a row in awa.leader_terms, a renewal extends both. Returns (epoch, elected_at, expires_at), or no row
 * when someone else holds a live lease.
 */
export const acquireLease = statement(
  "leaders_acquire",
  `WITH lease AS (
     INSERT INTO awa.leaders AS l (name, holder, token, epoch, elected_at, renewed_at, expires_at)
     VALUES ($1, $2, $3, 1, now(), now(), now() + make_interval(secs => $4::double precision / 1000))
     ON CONFLICT (name) DO UPDATE SET
       holder = excluded.holder,
       token = excluded.token,
       epoch = CASE WHEN ${ownLiveTerm} THEN l.epoch ELSE l.epoch + 1 END,
       elected_at = CASE WHEN ${ownLiveTerm} THEN l.elected_at ELSE now() END,
       renewed_at = now(),
       expires_at = excluded.expires_at
     WHERE l.expires_at <= now() OR (${ownTerm})
     RETURNING l.name, l.holder, l.epoch, l.elected_at, l.expires_at
   ), term AS (
     INSERT INTO awa.leader_terms AS t (name, epoch, holder, elected_at, expires_at)
     SELECT name, epoch, holder, elected_at, expires_at FROM lease
     ON CONFLICT (name, epoch) DO UPDATE SET expires_at = excluded.expires_at
   )
   SELECT lease.epoch::text AS epoch, lease.elected_at, lease.expires_at FROM lease`,
  { prepared: false },
)

/**
 * Ends candidate $2's (token) live lease of role $1 at epoch $3 now (expires_at = now(), in the lease and its term),
 * so another candidate can take over at once. Returns `released`: 1 when it held it, else 0.
 */
export const releaseLease = statement(
  "leaders_release",
  `WITH lease AS (
     UPDATE awa.leaders l SET expires_at = now(), renewed_at = now()
     WHERE l.name = $1 AND l.token = $2 AND l.epoch = $3::bigint AND l.expires_at > now()
     RETURNING l.name, l.epoch, l.expires_at
   ), term AS (
     UPDATE awa.leader_terms t SET expires_at = lease.expires_at
     FROM lease WHERE t.name = lease.name AND t.epoch = lease.epoch
   )
   SELECT count(*)::int AS released FROM lease`,
  { prepared: false },
)

/**
 * The fence: locks role $1's lease row FOR SHARE until the end of the caller's transaction (a takeover,
 * which updates the row, waits for it) and reports its holder, epoch and whether it is live at the
 * transaction's time (and the candidate token, to compare with the caller's).
 */
export const lockLeaseShared = statement(
  "leaders_lock_shared",
  `SELECT l.holder, l.token, l.epoch::text AS epoch, l.expires_at > now() AS live
   FROM awa.leaders l WHERE l.name = $1 FOR SHARE`,
  { prepared: false },
)

/** Deletes role $1's terms older than the newest $2 (the history stays bounded). */
export const pruneTerms = statement(
  "leaders_prune_terms",
  `DELETE FROM awa.leader_terms t
   WHERE t.name = $1 AND t.epoch <= (SELECT max(epoch) FROM awa.leader_terms WHERE name = $1) - $2::bigint`,
  { prepared: false },
)

/** Reads the lease of role $1 with whether it is live now. */
export const getLeader = statement(
  "leaders_get",
  `SELECT l.name, l.holder, l.epoch::text AS epoch, l.elected_at, l.renewed_at, l.expires_at,
     l.expires_at > now() AS live
   FROM awa.leaders l WHERE l.name = $1`,
)

/** Reads role $1's terms, oldest first: (epoch, holder, elected_at, expires_at). */
export const listTerms = statement(
  "leaders_terms",
  `SELECT t.epoch::text AS epoch, t.holder, t.elected_at, t.expires_at
   FROM awa.leader_terms t WHERE t.name = $1 ORDER BY t.epoch`,
)

/** Reads the active storage engine. */
export const activeEngine = statement(
  "runtime_state_active_engine",
  `SELECT s.active_engine FROM awa.runtime_state s`,
)
