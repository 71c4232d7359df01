-- Decisions recorded from Linear comments and issues, merged GitHub pull requests and Discord
-- messages, searched by `/decisions`. One row per (tenant, dedupe_key): an edited Linear comment
-- updates its decision instead of adding another. `search_text` is the lower-cased title and
-- text, matched term by term with LIKE (the same SQL on both backends).
CREATE TABLE IF NOT EXISTS decisions (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    url            TEXT,
    author         TEXT,
    decided_at_ms  BIGINT  NOT NULL,
    dedupe_key     TEXT    NOT NULL,
    search_text    TEXT    NOT NULL,
    recorded_at_ms BIGINT  NOT NULL,
    UNIQUE (tenant_id, dedupe_key)
);

CREATE INDEX IF NOT EXISTS decisions_tenant_time ON decisions (tenant_id, decided_at_ms);
