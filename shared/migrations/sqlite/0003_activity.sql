-- Activity events: what happened in a tenant's GitHub, Linear and Discord (merged pull requests,
-- releases, finished builds, issue changes), kept for weekly digests.
-- The (tenant_id, dedupe_key) pair makes a job that runs twice store its event once.
-- `details` is a JSON object (TEXT here, JSONB on PostgreSQL).
CREATE TABLE IF NOT EXISTS activity_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    url            TEXT,
    actor          TEXT,
    occurred_at_ms INTEGER NOT NULL,
    details        TEXT    NOT NULL DEFAULT '{}',
    dedupe_key     TEXT    NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, dedupe_key)
);

CREATE INDEX IF NOT EXISTS activity_events_tenant_time ON activity_events (tenant_id, occurred_at_ms);
