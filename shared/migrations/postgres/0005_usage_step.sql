-- Usage records of Claude calls are keyed by the billed message's id (`claude:msg_...`): a repeat
-- of a job step (a retry after a failed sibling, a job reclaimed after a crash) is a second paid
-- call and gets a second row, while re-inserting the same answer stays idempotent. The job and
-- its step stay queryable as columns for reports.
ALTER TABLE usage_records ADD COLUMN step TEXT;

-- Rows written before: their key was `job:<job id>:<step>`.
UPDATE usage_records
SET step = substr(idempotency_key, length('job:' || job_id || ':') + 1)
WHERE job_id IS NOT NULL AND step IS NULL AND idempotency_key LIKE 'job:%'
  AND substr(idempotency_key, 1, length('job:' || job_id || ':')) = 'job:' || job_id || ':';

CREATE INDEX IF NOT EXISTS usage_records_tenant_job ON usage_records (tenant_id, job_id);
