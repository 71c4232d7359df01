-- Usage records: one row per billable operation (a Claude call, a stored document, ...).
-- The (tenant_id, idempotency_key) pair makes a job that runs twice record once.
CREATE TABLE IF NOT EXISTS usage_records (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id             TEXT    NOT NULL,
    user_id               TEXT,
    occurred_at_ms        INTEGER NOT NULL,
    operation             TEXT    NOT NULL,
    service               TEXT    NOT NULL,
    model                 TEXT,
    input_tokens          INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens         INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_creation_tokens >= 0),
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    storage_bytes         INTEGER NOT NULL DEFAULT 0,
    api_calls             INTEGER NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
    cost_micros           INTEGER NOT NULL DEFAULT 0,
    job_id                TEXT,
    idempotency_key       TEXT    NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);

CREATE INDEX IF NOT EXISTS usage_records_tenant_time ON usage_records (tenant_id, occurred_at_ms);
