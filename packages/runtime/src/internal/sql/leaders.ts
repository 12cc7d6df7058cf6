// Named statements for leader election (session advisory lock) and the awa.leaders record.
import { statement } from "../../PgExecutor.js"

// Advisory lock keys: class 6387553 is "awa" in ASCII (0x617761); object ids name the role.
/** Tries to take the session advisory lock for leader role $1 (an integer object id); true when held. */
export const tryLeaderLock = statement(
  "leaders_try_lock",
  `SELECT pg_try_advisory_lock(6387553, $1::integer) AS acquired`,
)

/** Releases the session advisory lock for leader role $1. */
export const releaseLeaderLock = statement(
  "leaders_release_lock",
  `SELECT pg_advisory_unlock(6387553, $1::integer) AS released`,
)

/** Records holder $2 as leader of role $1 (informational; the lock is the truth). */
export const recordLeader = statement(
  "leaders_record",
  `INSERT INTO awa.leaders AS l (name, holder) VALUES ($1, $2)
   ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
     elected_at = CASE WHEN l.holder = excluded.holder THEN l.elected_at ELSE now() END, renewed_at = now()`,
)

/** Reads the recorded leader of role $1. */
export const getLeader = statement(
  "leaders_get",
  `SELECT l.name, l.holder, l.elected_at, l.renewed_at FROM awa.leaders l WHERE l.name = $1`,
)

/** Reads the active storage engine. */
export const activeEngine = statement(
  "runtime_state_active_engine",
  `SELECT s.active_engine FROM awa.runtime_state s`,
)
