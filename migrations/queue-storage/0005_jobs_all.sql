-- One job listing across engines for SQL users: view {{schema}}.jobs_all unions the canonical engine's awa.jobs with this queue-storage schema's job read model, in the canonical column set plus engine.

-- Columns as the admin reads return them: state and unique_states as text, unique_key as lowercase hex (what
-- awa.insert_job returns). DLQ entries are not jobs here (see awa.dlq and the schema's dlq_entries). The
-- queue-storage half computes the whole read model per query (the job_rows function); filter on its columns.
CREATE VIEW {{schema}}.jobs_all AS
SELECT j.id, j.kind, j.queue, j.args, j.state::text AS state, j.priority, j.attempt, j.max_attempts, j.run_lease,
  j.run_at, j.attempted_at, j.heartbeat_at, j.deadline_at, j.finalized_at, j.attempt_timeout_ms, j.errors, j.tags,
  j.metadata, encode(j.unique_key, 'hex') AS unique_key, j.unique_states::text[] AS unique_states, j.created_at,
  'canonical'::text AS engine
FROM awa.jobs j
UNION ALL
SELECT q.id, q.kind, q.queue, q.args, q.state, q.priority, q.attempt, q.max_attempts, q.run_lease,
  q.run_at, q.attempted_at, q.heartbeat_at, q.deadline_at, q.finalized_at, q.attempt_timeout_ms, q.errors, q.tags,
  q.metadata, encode(q.unique_key, 'hex'), q.unique_states, q.created_at,
  'queue_storage'::text
FROM {{schema}}.job_rows(NULL) q;

COMMENT ON VIEW {{schema}}.jobs_all IS
  'Every job of both engines (canonical awa.jobs and this schema''s queue storage) in the canonical column set, with engine naming where it lives.';
