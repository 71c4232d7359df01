-- Activity events: what happened in a tenant's GitHub, Linear and Discord (merged pull requests,
-- releases, finished builds, issue changes), kept for weekly digests.
-- The (tenant_id, dedupe_key) pair makes a job that runs twice store its event once.
CREATE TABLE IF NOT EXISTS activity_events (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    url            TEXT,
    actor          TEXT,
    occurred_at_ms BIGINT  NOT NULL,
    details        JSONB   NOT NULL DEFAULT '{}'::jsonb,
    dedupe_key     TEXT    NOT NULL,
    recorded_at_ms BIGINT  NOT NULL,
    UNIQUE (tenant_id, dedupe_key)
);

CREATE INDEX IF NOT EXISTS activity_events_tenant_time ON activity_events (tenant_id, occurred_at_ms);
