//! SQL for decisions on both backends (only the placeholders differ). Every statement is filtered
//! by tenant.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::{score, search_terms, Decision, DecisionError, StoredDecision};
use crate::activity::ActivitySource;
use crate::db::Database;
use crate::ids::TenantId;

/// Most rows a search ranks (the newest matching ones).
const CANDIDATES: i64 = 500;

const COLUMNS: &str = "id, tenant_id, source, title, body, url, author, decided_at_ms, dedupe_key";

/// `?1`-style placeholders for SQLite, `$1` for PostgreSQL.
fn placeholder(db: &Database, n: usize) -> String {
    match db {
        Database::Sqlite(_) => format!("?{n}"),
        Database::Postgres(_) => format!("${n}"),
    }
}

fn upsert_sql(db: &Database) -> String {
    let p: Vec<String> = (1..=10).map(|n| placeholder(db, n)).collect();
    // An edit keeps the decision's row (its citation number) and first time; text, title, link
    // and author follow the source.
    format!(
        "INSERT INTO decisions (tenant_id, source, title, body, url, author, decided_at_ms, \
         dedupe_key, search_text, recorded_at_ms) VALUES ({}) \
         ON CONFLICT (tenant_id, dedupe_key) DO UPDATE SET title = excluded.title, \
         body = excluded.body, url = excluded.url, author = excluded.author, \
         search_text = excluded.search_text RETURNING id",
        p.join(", ")
    )
}

/// Escapes `%`, `_` and `\` for `LIKE ... ESCAPE '\'`.
fn like_pattern(term: &str) -> String {
    let mut s = String::with_capacity(term.len() + 2);
    s.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

macro_rules! fetch_rows {
    ($pool:expr, $sql:expr, $binds:expr) => {{
        let mut q = sqlx::query($sql);
        for b in $binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        q.fetch_all($pool)
            .await?
            .iter()
            .map(|row| from_row(row))
            .collect::<Result<Vec<_>, _>>()
    }};
}

enum Bind {
    Text(String),
    Int(i64),
}

fn from_row<R: Row>(row: &R) -> Result<StoredDecision, DecisionError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let id: i64 = row.try_get("id")?;
    let corrupt = |message: String| DecisionError::Corrupt { id, message };
    let source: String = row.try_get("source")?;
    let ms: i64 = row.try_get("decided_at_ms")?;
    Ok(StoredDecision {
        id,
        decision: Decision {
            tenant: TenantId::new(row.try_get::<String, _>("tenant_id")?),
            source: ActivitySource::parse(&source)
                .ok_or_else(|| corrupt(format!("unknown source {source:?}")))?,
            title: row.try_get("title")?,
            text: row.try_get("body")?,
            url: row.try_get("url")?,
            author: row.try_get("author")?,
            decided_at: Utc
                .timestamp_millis_opt(ms)
                .single()
                .ok_or_else(|| corrupt(format!("decided_at_ms {ms} is out of range")))?,
            dedupe_key: row.try_get("dedupe_key")?,
        },
    })
}

/// Records, forgets and searches decisions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DecisionStore {
    db: Database,
}

impl DecisionStore {
    /// A store on `db` (migrated).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Stores `decision` (cut to the stored lengths), or updates the tenant's decision with the
    /// same dedupe key. Returns its row id.
    #[tracing::instrument(name = "decisions.record", skip_all, fields(tenant = %decision.tenant, key = %decision.dedupe_key), err(level = "warn", Display))]
    pub async fn record(&self, decision: &Decision) -> Result<i64, DecisionError> {
        let d = decision.clone().bounded();
        let search = format!("{}\n{}", d.title, d.text).to_lowercase();
        let now = Utc::now().timestamp_millis();
        let sql = upsert_sql(&self.db);
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query_scalar(&sql)
                    .bind(d.tenant.as_str())
                    .bind(d.source.as_str())
                    .bind(d.title.as_str())
                    .bind(d.text.as_str())
                    .bind(d.url.as_deref())
                    .bind(d.author.as_deref())
                    .bind(d.decided_at.timestamp_millis())
                    .bind(d.dedupe_key.as_str())
                    .bind(search.as_str())
                    .bind(now)
                    .fetch_one($pool)
                    .await?
            };
        }
        // Inserted or updated, the row comes back (`RETURNING` on both backends).
        Ok(match &self.db {
            Database::Sqlite(pool) => run!(pool),
            Database::Postgres(pool) => run!(pool),
        })
    }

    /// Removes the tenant's decision with `dedupe_key` (its source was deleted, or unmarked).
    /// Returns whether one existed.
    pub async fn forget(&self, tenant: &TenantId, dedupe_key: &str) -> Result<bool, DecisionError> {
        let sql = format!(
            "DELETE FROM decisions WHERE tenant_id = {} AND dedupe_key = {}",
            placeholder(&self.db, 1),
            placeholder(&self.db, 2)
        );
        let n = match &self.db {
            Database::Sqlite(pool) => sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(dedupe_key)
                .execute(pool)
                .await?
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(dedupe_key)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(n > 0)
    }

    /// The tenant's decisions with `from <= decided_at < to`, oldest first, at most `limit`
    /// (weekly digests say what was decided).
    pub async fn between(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredDecision>, DecisionError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM decisions WHERE tenant_id = {} AND decided_at_ms >= {} \
             AND decided_at_ms < {} ORDER BY decided_at_ms, id LIMIT {}",
            placeholder(&self.db, 1),
            placeholder(&self.db, 2),
            placeholder(&self.db, 3),
            placeholder(&self.db, 4)
        );
        let binds = vec![
            Bind::Text(tenant.as_str().to_owned()),
            Bind::Int(from.timestamp_millis()),
            Bind::Int(to.timestamp_millis()),
            Bind::Int(i64::from(limit)),
        ];
        match &self.db {
            Database::Sqlite(pool) => fetch_rows!(pool, &sql, binds),
            Database::Postgres(pool) => fetch_rows!(pool, &sql, binds),
        }
    }

    /// The tenant's decisions best matching `query`, best first, at most `limit`. A decision
    /// matches when its title or text holds at least one of the query's terms
    /// ([`search_terms`]); ties go to the newer. A query without terms gives the newest.
    #[tracing::instrument(name = "decisions.search", skip_all, fields(tenant = %tenant), err(level = "warn", Display))]
    pub async fn search(
        &self,
        tenant: &TenantId,
        query: &str,
        limit: usize,
    ) -> Result<Vec<StoredDecision>, DecisionError> {
        let terms = search_terms(query);
        let mut sql = format!(
            "SELECT {COLUMNS} FROM decisions WHERE tenant_id = {}",
            placeholder(&self.db, 1)
        );
        let mut binds = vec![Bind::Text(tenant.as_str().to_owned())];
        if !terms.is_empty() {
            let likes: Vec<String> = terms
                .iter()
                .enumerate()
                .map(|(i, _)| {
                    format!(
                        "search_text LIKE {} ESCAPE '\\'",
                        placeholder(&self.db, i + 2)
                    )
                })
                .collect();
            sql.push_str(&format!(" AND ({})", likes.join(" OR ")));
            binds.extend(terms.iter().map(|t| Bind::Text(like_pattern(t))));
        }
        let cap = if terms.is_empty() {
            i64::try_from(limit).unwrap_or(i64::MAX)
        } else {
            CANDIDATES
        };
        sql.push_str(&format!(
            " ORDER BY decided_at_ms DESC, id DESC LIMIT {}",
            placeholder(&self.db, binds.len() + 1)
        ));
        binds.push(Bind::Int(cap));
        let mut found = match &self.db {
            Database::Sqlite(pool) => fetch_rows!(pool, &sql, binds)?,
            Database::Postgres(pool) => fetch_rows!(pool, &sql, binds)?,
        };
        if !terms.is_empty() {
            // Stable sort: equal scores keep the newest-first order of the query.
            found.sort_by_key(|d| std::cmp::Reverse(score(&d.decision, &terms)));
        }
        found.truncate(limit);
        Ok(found)
    }
}
