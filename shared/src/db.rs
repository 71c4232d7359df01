//! The SQL database (usage, events, decisions, the L3 cache): SQLite by default, PostgreSQL at
//! scale, chosen by `DATABASE_URL`. Each backend has its own migrations
//! (`shared/migrations/{sqlite,postgres}`), embedded in the binary and applied at start.
//! Queries go through [`Database::execute`] and the `fetch_*` methods (module `query`): one
//! statement and one list of [`Arg`]s for both backends.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod query;

pub use query::{stored_time, Arg, FromDbRow};

/// Migrations for SQLite.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// Migrations for PostgreSQL.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection pool on one of the two supported backends. Modules with their own tables run
/// their SQL through [`Database::execute`] and the `fetch_*` methods, the same statement and
/// values on both.
#[derive(Clone, Debug)]
pub enum Database {
    /// An embedded SQLite file (WAL mode, foreign keys on): the single-machine default.
    Sqlite(SqlitePool),
    /// A PostgreSQL server: when several machines share the data.
    Postgres(PgPool),
}

/// Which backend a [`Database`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`, or does not parse.
    #[error("DATABASE_URL is not usable: {0}")]
    BadUrl(String),
    /// The SQLite file's folder could not be created.
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The migration lock file could not be taken.
    #[error("cannot lock the database for migration: {0}")]
    Io(std::io::Error),
    /// Connecting or querying failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed (or the database has migrations this build does not know).
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Database {
    /// Connects and applies the migrations: what every process does at start.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        let db = Self::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects without migrating. For SQLite, creates the file and its folder if missing.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| DbError::BadUrl(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Database::Postgres(pool))
        } else {
            Err(DbError::BadUrl(
                "expected sqlite://<path> or postgres://...".into(),
            ))
        }
    }

    async fn connect_sqlite(url: &str) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbError::BadUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let file = file_of(&options);
        let in_memory = file.is_none();
        if let Some(parent) = file
            .as_deref()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
        {
            create_dir(parent)?;
        }
        // An in-memory database exists per connection: keep exactly one.
        let max = if in_memory { 1 } else { 8 };
        let pool_options = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            });
        // `connect_with` opens the first connection, whose `PRAGMA journal_mode = WAL` converts
        // a new file. The conversion upgrades a read lock to a write lock, and SQLite never
        // waits (busy_timeout) on an upgrade: two processes converting the same new file at
        // once, one fails with "database is locked". So the first connection is made under the
        // same file lock as migrations; once the file is in WAL mode (persistent), later
        // connections find it so and write nothing.
        let _guard = match file {
            Some(path) => Some(lock_file(path).await?),
            None => None,
        };
        let pool = pool_options.connect_with(options).await?;
        Ok(Database::Sqlite(pool))
    }

    /// Applies this build's migrations for the backend. Several processes may start at once
    /// (three workers on one SQLite file): Postgres serializes them with an advisory lock inside
    /// sqlx; for a SQLite file an exclusive lock on `<file>.migrate-lock` does the same (the
    /// lock [`Database::connect`] holds while it converts a new file to WAL).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Database::Sqlite(pool) => {
                let _guard = match file_of(&pool.connect_options()) {
                    Some(path) => Some(lock_file(path).await?),
                    None => None,
                };
                SQLITE_MIGRATIONS.run(pool).await?
            }
            Database::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// A trivial query (readiness checks).
    pub async fn ping(&self) -> Result<(), DbError> {
        self.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    /// Closes every connection (waits for checked-out ones to return).
    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

fn create_dir(path: &Path) -> Result<(), DbError> {
    std::fs::create_dir_all(path).map_err(|source| DbError::CreateDir {
        path: path.display().to_string(),
        source,
    })
}

/// The file behind SQLite options, if the database is not in memory.
fn file_of(options: &SqliteConnectOptions) -> Option<std::path::PathBuf> {
    let path = options.get_filename();
    let name = path.to_string_lossy();
    // sqlx names in-memory databases `file:sqlx-in-memory-N` (a URI filename).
    let in_memory = name.is_empty()
        || name.contains(":memory:")
        || name.contains("mode=memory")
        || name.starts_with("file:");
    (!in_memory).then(|| path.to_path_buf())
}

/// Takes an exclusive advisory lock on `<db_file>.migrate-lock` (first connection and
/// migrations); released when the returned file is dropped. Not reentrant: never nest two.
async fn lock_file(db_file: std::path::PathBuf) -> Result<std::fs::File, DbError> {
    let mut lock_path = db_file.into_os_string();
    lock_path.push(".migrate-lock");
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        f.lock()?;
        Ok::<_, std::io::Error>(f)
    })
    .await
    .map_err(|e| DbError::Io(std::io::Error::other(e)))?
    .map_err(DbError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_and_folder_are_created_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/onomancer.db");
        let db = Database::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(db.backend(), Backend::Sqlite);
        assert!(path.exists());
        db.ping().await.unwrap();
        let Database::Sqlite(pool) = &db else {
            unreachable!()
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // Migrating twice is a no-op.
        db.migrate().await.unwrap();
        db.close().await;
    }

    #[tokio::test]
    async fn in_memory_sqlite_works() {
        let db = Database::open("sqlite::memory:").await.unwrap();
        let Database::Sqlite(pool) = &db else {
            unreachable!()
        };
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_records")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn postgres_is_migrated() {
        let t = onomancer_testkit::db::TestDb::postgres().await;
        let db = Database::open(&t.url).await.unwrap();
        assert_eq!(db.backend(), Backend::Postgres);
        db.ping().await.unwrap();
        // Every table of the migrations exists, and every migration is recorded as applied.
        let tables: Vec<(String,)> = db
            .fetch_all(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name",
                &[],
            )
            .await
            .unwrap();
        let tables: Vec<&str> = tables.iter().map(|(t,)| t.as_str()).collect();
        for table in [
            "usage_records",
            "transform_cache",
            "activity_events",
            "decisions",
        ] {
            assert!(tables.contains(&table), "{table} missing from {tables:?}");
        }
        let applied: Vec<(i64,)> = db
            .fetch_all(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
                &[],
            )
            .await
            .unwrap();
        let migrations =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
                .unwrap()
                .count();
        assert_eq!(applied.len(), migrations, "applied: {applied:?}");
        db.close().await;
    }

    #[test]
    fn the_default_url_is_a_path_relative_to_the_working_directory() {
        let options = SqliteConnectOptions::from_str("sqlite://./data/onomancer.db").unwrap();
        assert_eq!(options.get_filename(), Path::new("./data/onomancer.db"));
    }

    /// Processes starting at the same moment on a new file: every open (connect, WAL switch,
    /// migrations) succeeds. Threads with their own runtimes and pools stand in for processes
    /// (SQLite and the lock file see separate connections and open files either way); a barrier
    /// lines them up so the first connections really race. Without the lock around the first
    /// connection, 3 openers x 60 rounds saw "database is locked" in every run (1-3 rounds).
    #[test]
    fn simultaneous_first_opens_of_a_new_sqlite_file_all_succeed() {
        const OPENERS: usize = 3;
        let mut failures = Vec::new();
        for round in 0..60 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(OPENERS));
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    let (url, barrier) = (url.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        barrier.wait();
                        rt.block_on(async {
                            let db = Database::open(&url).await?;
                            let Database::Sqlite(pool) = &db else {
                                unreachable!()
                            };
                            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                                .fetch_one(pool)
                                .await?;
                            sqlx::query("SELECT COUNT(*) FROM usage_records")
                                .execute(pool)
                                .await?;
                            db.close().await;
                            Ok::<_, DbError>(mode)
                        })
                    })
                })
                .collect();
            for opener in openers {
                match opener.join().unwrap() {
                    Ok(mode) => assert_eq!(mode, "wal"),
                    Err(e) => failures.push(format!("round {round}: {e}")),
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        let err = Database::connect("mysql://x").await.unwrap_err();
        assert!(matches!(err, DbError::BadUrl(_)), "{err}");
    }
}
