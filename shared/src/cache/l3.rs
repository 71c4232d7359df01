//! L3: the permanent tier. [`L3Store`] has two implementations: [`SqlL3`] (the `transform_cache`
//! table of migration 0002, SQLite or PostgreSQL; the default) and a Google Docs store for
//! tenants with a Workspace ([`super::l3_gdocs::GoogleDocsL3`]).

use futures::future::BoxFuture;

use super::entry::{CacheEntry, CacheKey, EntryDecodeError, Expectation};
use crate::db::Database;

/// Why the permanent tier failed.
#[derive(Debug, thiserror::Error)]
pub enum L3Error {
    /// The database failed.
    #[error("cache table: {0}")]
    Sql(#[from] sqlx::Error),
    /// Stored bytes are not an entry.
    #[error(transparent)]
    Decode(#[from] EntryDecodeError),
    /// Another backend (e.g. Google Docs) failed.
    #[error("{backend}: {message}")]
    Backend {
        /// Which store.
        backend: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// A permanent store of entries.
pub trait L3Store: Send + Sync + 'static {
    /// The store's name in logs.
    fn name(&self) -> &'static str;
    /// Reads `key`. `expect` lets a store that cannot hold the metadata (Google Docs) key its
    /// documents by prompt fingerprint; the caller still checks the returned entry against it.
    fn get<'a>(
        &'a self,
        key: &'a CacheKey,
        expect: &'a Expectation,
    ) -> BoxFuture<'a, Result<Option<CacheEntry>, L3Error>>;
    /// Writes (or overwrites) `key`.
    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        entry: &'a CacheEntry,
    ) -> BoxFuture<'a, Result<(), L3Error>>;
}

/// The `transform_cache` table, on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlL3 {
    db: Database,
}

const SELECT: &str = "SELECT entry FROM transform_cache WHERE tenant_id = $1 AND cache_key = $2";
const UPSERT: &str = "INSERT INTO transform_cache \
    (tenant_id, cache_key, data_type, model, template_fingerprint, entry, created_ms, updated_ms) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT (tenant_id, cache_key) DO UPDATE SET data_type = excluded.data_type, \
    model = excluded.model, template_fingerprint = excluded.template_fingerprint, \
    entry = excluded.entry, updated_ms = excluded.updated_ms";

impl SqlL3 {
    /// The table in `db` (migrated).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    async fn get_entry(&self, key: &CacheKey) -> Result<Option<CacheEntry>, L3Error> {
        let local = key.local_key();
        let args = [key.tenant.as_str().into(), local.as_str().into()];
        let row: Option<(Vec<u8>,)> = self.db.fetch_optional(SELECT, &args).await?;
        Ok(match row {
            Some((bytes,)) => Some(CacheEntry::decode(&bytes)?),
            None => None,
        })
    }

    async fn put_entry(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), L3Error> {
        let local = key.local_key();
        let bytes = entry.encode();
        let now = chrono::Utc::now().timestamp_millis();
        let args = [
            key.tenant.as_str().into(),
            local.as_str().into(),
            key.data_type.config_name().into(),
            entry.model.as_str().into(),
            entry.fingerprint.as_str().into(),
            bytes.as_slice().into(),
            entry.created_ms.into(),
            now.into(),
        ];
        self.db.execute(UPSERT, &args).await?;
        Ok(())
    }
}

impl L3Store for SqlL3 {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn get<'a>(
        &'a self,
        key: &'a CacheKey,
        _expect: &'a Expectation,
    ) -> BoxFuture<'a, Result<Option<CacheEntry>, L3Error>> {
        Box::pin(self.get_entry(key))
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        entry: &'a CacheEntry,
    ) -> BoxFuture<'a, Result<(), L3Error>> {
        Box::pin(self.put_entry(key, entry))
    }
}

impl From<&Database> for SqlL3 {
    fn from(db: &Database) -> Self {
        Self::new(db.clone())
    }
}
