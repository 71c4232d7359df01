//! The one query path: a store writes each statement once, with `$N` placeholders (PostgreSQL's
//! style, which sqlx's SQLite driver reads as parameter N too), and its values once, as [`Arg`]s;
//! [`Database::execute`] and the `fetch_*` methods bind them on whichever backend the database
//! is, and read rows into any `#[derive(sqlx::FromRow)]` type. Where the two dialects differ, a
//! method of [`Backend`] writes the SQL for each ([`Backend::json`]).

use chrono::{DateTime, TimeZone, Utc};
use sqlx::postgres::PgRow;
use sqlx::query::{Map, Query};
use sqlx::sqlite::SqliteRow;
use sqlx::{Encode, FromRow, IntoArguments, Type};

use super::{Backend, Database};

impl Backend {
    /// Bound JSON text (`param`, e.g. `$8`) as the value of a JSON column: JSONB on PostgreSQL
    /// (cast from the text), TEXT on SQLite (stored as is).
    pub fn json(self, param: &str) -> String {
        match self {
            Backend::Sqlite => param.to_owned(),
            Backend::Postgres => format!("CAST({param} AS JSONB)"),
        }
    }
}

/// A value bound to a statement. Stores bind only these types, each stored alike on both
/// backends (times as `i64` milliseconds), so one statement and one list of values serve both.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// An integer (`INTEGER` on SQLite, `BIGINT` on PostgreSQL).
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Text or `NULL`.
    OptText(Option<&'a str>),
    /// Bytes (`BLOB` on SQLite, `BYTEA` on PostgreSQL).
    Bytes(&'a [u8]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(v)
    }
}

/// A time stored as milliseconds since the epoch (how every table here keeps times), or why it
/// cannot be one (`column` names it).
pub fn stored_time(column: &str, ms: i64) -> Result<DateTime<Utc>, String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| format!("{column} {ms} is out of range"))
}

/// A row read the same way from either backend: what `#[derive(sqlx::FromRow)]` gives (tuples
/// such as `(i64,)` too).
pub trait FromDbRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromDbRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// `sql` with `args` bound in order, on backend `DB`: the one binding code path.
fn bound<'q, DB>(sql: &'q str, args: &[Arg<'q>]) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: sqlx::Database,
    i64: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    args.iter().fold(sqlx::query(sql), |q, arg| match *arg {
        Arg::Int(v) => q.bind(v),
        Arg::Text(v) => q.bind(v),
        Arg::OptText(v) => q.bind(v),
        Arg::Bytes(v) => q.bind(v),
    })
}

/// `query` with each row it returns read as a `T`.
fn read<'q, DB, T>(
    query: Query<'q, DB, DB::Arguments<'q>>,
) -> Map<'q, DB, impl FnMut(DB::Row) -> Result<T, sqlx::Error> + Send, DB::Arguments<'q>>
where
    DB: sqlx::Database,
    DB::Arguments<'q>: IntoArguments<'q, DB>,
    T: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
{
    query.try_map(|row| T::from_row(&row))
}

impl Database {
    /// Runs `sql` with `args` bound to `$1`, `$2`, ...; returns how many rows it changed.
    pub async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Database::Sqlite(pool) => bound(sql, args).execute(pool).await?.rows_affected(),
            Database::Postgres(pool) => bound(sql, args).execute(pool).await?.rows_affected(),
        })
    }

    /// Every row `sql` returns with `args` bound, each read as a `T`.
    pub async fn fetch_all<T: FromDbRow>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Database::Sqlite(pool) => read(bound(sql, args)).fetch_all(pool).await,
            Database::Postgres(pool) => read(bound(sql, args)).fetch_all(pool).await,
        }
    }

    /// The first row `sql` returns with `args` bound, if any, read as a `T`.
    pub async fn fetch_optional<T: FromDbRow>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, sqlx::Error> {
        match self {
            Database::Sqlite(pool) => read(bound(sql, args)).fetch_optional(pool).await,
            Database::Postgres(pool) => read(bound(sql, args)).fetch_optional(pool).await,
        }
    }

    /// The first row `sql` returns with `args` bound, read as a `T`; [`sqlx::Error::RowNotFound`]
    /// when there is none.
    pub async fn fetch_one<T: FromDbRow>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<T, sqlx::Error> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

#[cfg(test)]
mod tests {
    use onomancer_testkit::db::TestDb;

    use super::*;

    /// `$N` is parameter N on both backends (on SQLite too: out of order and repeated), and
    /// every kind of [`Arg`] comes back as it was bound.
    #[tokio::test]
    async fn numbered_placeholders_bind_every_arg_alike_on_both_backends() {
        for t in TestDb::both().await {
            let db = Database::open(&t.url).await.unwrap();
            let args = [
                7i64.into(),
                "text".into(),
                Some("some").into(),
                None::<&str>.into(),
                b"\0bytes".as_slice().into(),
            ];
            type Row = (String, i64, Option<String>, Option<String>, Vec<u8>, i64);
            let row: Row = db
                .fetch_one("SELECT $2, $1, $3, $4, $5, $1", &args)
                .await
                .unwrap();
            let expected = (
                "text".into(),
                7,
                Some("some".into()),
                None,
                b"\0bytes".to_vec(),
                7,
            );
            assert_eq!(row, expected, "{:?}", db.backend());
            let none: Option<(i64,)> = db
                .fetch_optional("SELECT $1 WHERE 1 = 0", &[1i64.into()])
                .await
                .unwrap();
            assert_eq!(none, None);
            let err = db
                .fetch_one::<(i64,)>("SELECT $1 WHERE 1 = 0", &[1i64.into()])
                .await;
            assert!(matches!(err, Err(sqlx::Error::RowNotFound)), "{err:?}");
            db.close().await;
        }
    }
}
