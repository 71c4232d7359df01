//! A fresh, migrated database per test: a SQLite file in a temporary folder, or a new
//! PostgreSQL database `t_<uuid>` on the machine's server, dropped when the value is dropped.

use onomancer_shared::db::Database;
use sqlx::Connection;

/// The server tests create their databases on (`TEST_DATABASE_URL`, default the machine's
/// `postgres://postgres@127.0.0.1:5432/test`).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database nobody else uses, already migrated.
pub struct TestDb {
    /// `DATABASE_URL` for this database (pass it to processes under test).
    pub url: String,
    /// An open pool on it.
    pub db: Database,
    /// The PostgreSQL database to drop, if this is one.
    pg_name: Option<String>,
    /// Holds the SQLite file's folder until drop.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A SQLite file in a new temporary folder.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = Database::open(&url)
            .await
            .expect("open the test SQLite database");
        Self {
            url,
            db,
            pg_name: None,
            _dir: Some(dir),
        }
    }

    /// A new database `t_<uuid>` on the test PostgreSQL server.
    pub async fn postgres() -> Self {
        let admin = postgres_admin_url();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("the test PostgreSQL at 127.0.0.1:5432 must be running");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let url = database_url(&admin, &name);
        let db = Database::open(&url)
            .await
            .expect("open the test PostgreSQL database");
        Self {
            url,
            db,
            pg_name: Some(name),
            _dir: None,
        }
    }

    /// The two backends, for tests that run the same checks on each.
    pub async fn both() -> [TestDb; 2] {
        [TestDb::sqlite().await, TestDb::postgres().await]
    }
}

/// `admin` with its database name replaced by `name` (query parameters kept).
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Dropping needs async I/O: use a thread with its own runtime so drop works inside a
        // tokio test. FORCE ends this value's own pool connections, still open at this point.
        let admin = postgres_admin_url();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_swap_the_name() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/test", "t_1"),
            "postgres://postgres@127.0.0.1:5432/t_1"
        );
        assert_eq!(
            database_url("postgres://u@h:1/x?sslmode=disable", "t_2"),
            "postgres://u@h:1/t_2?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://u@h:1", "t_3"),
            "postgres://u@h:1/t_3"
        );
    }

    #[tokio::test]
    async fn postgres_database_is_dropped_with_the_value() {
        let t = TestDb::postgres().await;
        let name = t.pg_name.clone().unwrap();
        t.db.ping().await.unwrap();
        drop(t);
        let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn sqlite_file_lives_in_its_own_folder() {
        let t = TestDb::sqlite().await;
        assert!(t.url.starts_with("sqlite://"));
        t.db.ping().await.unwrap();
    }
}
