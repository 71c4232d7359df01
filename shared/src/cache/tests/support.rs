//! Test helpers: an isolated Redis namespace cleaned up on drop (like `onomancer_testkit::TestRedis`,
//! which unit tests of this crate cannot use: its `RedisConn` is a different crate instance), and
//! fresh SQL databases with the cache migration applied.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::cache::{CacheConfig, Clock, SqlL3, TieredCache};
use crate::db::Database;
use crate::{KeySpace, RedisConn};

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct Ns {
    pub conn: RedisConn,
    pub keys: KeySpace,
}

impl Ns {
    pub async fn new() -> Self {
        let name = format!("t-{}", uuid::Uuid::new_v4().simple());
        Self {
            conn: RedisConn::connect(&redis_url()).await.expect("test Redis"),
            keys: KeySpace::isolated(&name),
        }
    }

    /// A cache in this namespace with its own L1 and registry (one "worker").
    pub fn cache(&self, config: CacheConfig, clock: Clock, l3: Option<SqlL3>) -> TieredCache {
        let mut b = TieredCache::builder(self.conn.clone(), self.keys.clone())
            .config(config)
            .clock(clock)
            .redis_url(redis_url());
        if let Some(l3) = l3 {
            b = b.l3(Arc::new(l3));
        }
        b.build(&prometheus::Registry::new())
            .expect("metrics register")
    }

    pub async fn pttl(&self, key: &str) -> i64 {
        let mut c = self.conn.clone();
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let patterns = self.keys.all_keys_pattern();
        let url = redis_url();
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut c) = client.get_connection() else {
                return;
            };
            for pattern in patterns {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query(&mut c)
                    .unwrap_or_default();
                for chunk in keys.chunks(500) {
                    let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(chunk).query(&mut c);
                }
            }
        })
        .join();
    }
}

/// A SQLite file database with migration 0002 applied (kept alive by the returned dir).
pub async fn sqlite_l3() -> (SqlL3, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteConnectOptions::new()
        .filename(dir.path().join("cache.db"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
    sqlx::raw_sql(include_str!(
        "../../../migrations/sqlite/0002_transform_cache.sql"
    ))
    .execute(&pool)
    .await
    .unwrap();
    (SqlL3::new(Database::Sqlite(pool)), dir)
}

/// A fresh PostgreSQL database (dropped by [`PgDb::drop_db`]) with migration 0002 applied.
pub struct PgDb {
    pub name: String,
    pub l3: SqlL3,
    pool: PgPool,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

impl PgDb {
    pub async fn new() -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(PG_ADMIN)
            .await
            .unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&format!("postgres://postgres@127.0.0.1:5432/{name}"))
            .await
            .unwrap();
        sqlx::raw_sql(include_str!(
            "../../../migrations/postgres/0002_transform_cache.sql"
        ))
        .execute(&pool)
        .await
        .unwrap();
        Self {
            name,
            l3: SqlL3::new(Database::Postgres(pool.clone())),
            pool,
        }
    }

    pub async fn drop_db(self) {
        self.pool.close().await;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(PG_ADMIN)
            .await
            .unwrap();
        sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&admin)
        .await
        .unwrap();
    }
}

/// Counts calls of a compute function.
#[derive(Clone, Default)]
pub struct Calls(pub Arc<AtomicUsize>);

impl Calls {
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
