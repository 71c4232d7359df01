-- L3 of the tiered cache: permanent store of generated texts (transformations, section
-- summaries), keyed like Redis without the tenant prefix: `transform:{contentHash}:{persona}`.
-- `entry` is the msgpack-encoded CacheEntry (value, model, template fingerprint, created, usage);
-- model and template_fingerprint are copied out so operators can find entries a prompt change
-- made obsolete.
CREATE TABLE IF NOT EXISTS transform_cache (
    tenant_id            TEXT    NOT NULL,
    cache_key            TEXT    NOT NULL,
    data_type            TEXT    NOT NULL,
    model                TEXT    NOT NULL,
    template_fingerprint TEXT    NOT NULL,
    entry                BLOB    NOT NULL,
    created_ms           INTEGER NOT NULL,
    updated_ms           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, cache_key)
);
