-- Leader election by lease: awa.leaders becomes one lease row per role (holder, fencing epoch, expiry on the database clock) and awa.leader_terms keeps one row per epoch, so election needs no session state (it works through a transaction-pooling PgBouncer) and a deposed leader's late writes are refused.

-- The lease. A candidate takes it only when expires_at has passed (or it already holds it), in one
-- statement against the database clock; every change of holder increments epoch. Maintenance runs in
-- transactions that first lock this row FOR SHARE and check (token, epoch, expires_at > now()), so a
-- takeover waits for the old leader's write in flight and the old leader's later writes change nothing.
-- Rows recorded before this migration (session advisory lock era) become expired leases.
ALTER TABLE awa.leaders
  ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CONSTRAINT leaders_epoch_nonnegative CHECK (epoch >= 0),
  ADD COLUMN expires_at timestamptz NOT NULL DEFAULT '-infinity',
  ADD COLUMN token text NOT NULL DEFAULT '';

COMMENT ON TABLE awa.leaders IS
  'awa leader leases (maintenance): holder, fencing epoch and expiry per role; the row is the election.';
COMMENT ON COLUMN awa.leaders.epoch IS 'Fencing epoch: incremented on every new term; writes of an older epoch are refused.';
COMMENT ON COLUMN awa.leaders.token IS 'Random per candidate instance: two candidates given the same holder name never share a lease.';
COMMENT ON COLUMN awa.leaders.expires_at IS 'The lease ends at this database time unless renewed; a stepping-down leader sets it to now().';

-- One row per term (role, epoch): who held it, from when, and until when its lease ran (updated on every
-- renewal and on release). Consecutive terms never overlap: a term starts only after the previous one's
-- expires_at. Maintenance keeps the most recent terms and prunes older ones.
CREATE TABLE awa.leader_terms (
  name text NOT NULL,
  epoch bigint NOT NULL,
  holder text NOT NULL,
  elected_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (name, epoch)
);

COMMENT ON TABLE awa.leader_terms IS 'awa leadership history: one row per (role, epoch) with its holder and lease span.';
