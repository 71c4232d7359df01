//! SQL for decisions, one statement for both backends. Every statement is filtered by tenant.

use chrono::{DateTime, Utc};

use super::{score, search_terms, Decision, DecisionError, StoredDecision};
use crate::activity::ActivitySource;
use crate::db::{stored_time, Arg, Database};
use crate::ids::TenantId;

/// Most rows a search ranks (the newest matching ones).
const CANDIDATES: i64 = 500;

const COLUMNS: &str = "id, tenant_id, source, title, body, url, author, decided_at_ms, dedupe_key";

/// An edit keeps the decision's row (its citation number) and first time; text, title, link and
/// author follow the source.
const UPSERT: &str = "INSERT INTO decisions (tenant_id, source, title, body, url, author, \
     decided_at_ms, dedupe_key, search_text, recorded_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (tenant_id, dedupe_key) DO UPDATE SET title = excluded.title, \
     body = excluded.body, url = excluded.url, author = excluded.author, \
     search_text = excluded.search_text RETURNING id";

const DELETE: &str = "DELETE FROM decisions WHERE tenant_id = $1 AND dedupe_key = $2";

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

/// A stored decision as the table holds it.
#[derive(sqlx::FromRow)]
struct DecisionRow {
    id: i64,
    tenant_id: String,
    source: String,
    title: String,
    body: String,
    url: Option<String>,
    author: Option<String>,
    decided_at_ms: i64,
    dedupe_key: String,
}

impl TryFrom<DecisionRow> for StoredDecision {
    type Error = DecisionError;

    fn try_from(row: DecisionRow) -> Result<Self, DecisionError> {
        let corrupt = |message| DecisionError::Corrupt {
            id: row.id,
            message,
        };
        let decision = Decision {
            tenant: TenantId::new(row.tenant_id),
            source: ActivitySource::parse(&row.source)
                .ok_or_else(|| corrupt(format!("unknown source {:?}", row.source)))?,
            title: row.title,
            text: row.body,
            url: row.url,
            author: row.author,
            decided_at: stored_time("decided_at_ms", row.decided_at_ms).map_err(corrupt)?,
            dedupe_key: row.dedupe_key,
        };
        Ok(StoredDecision {
            id: row.id,
            decision,
        })
    }
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
        let args = [
            d.tenant.as_str().into(),
            d.source.as_str().into(),
            d.title.as_str().into(),
            d.text.as_str().into(),
            d.url.as_deref().into(),
            d.author.as_deref().into(),
            d.decided_at.timestamp_millis().into(),
            d.dedupe_key.as_str().into(),
            search.as_str().into(),
            now.into(),
        ];
        // Inserted or updated, the row comes back (`RETURNING` on both backends).
        let (id,): (i64,) = self.db.fetch_one(UPSERT, &args).await?;
        Ok(id)
    }

    /// Removes the tenant's decision with `dedupe_key` (its source was deleted, or unmarked).
    /// Returns whether one existed.
    pub async fn forget(&self, tenant: &TenantId, dedupe_key: &str) -> Result<bool, DecisionError> {
        let args = [tenant.as_str().into(), dedupe_key.into()];
        Ok(self.db.execute(DELETE, &args).await? > 0)
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
            "SELECT {COLUMNS} FROM decisions WHERE tenant_id = $1 AND decided_at_ms >= $2 \
             AND decided_at_ms < $3 ORDER BY decided_at_ms, id LIMIT $4"
        );
        let args = [
            tenant.as_str().into(),
            from.timestamp_millis().into(),
            to.timestamp_millis().into(),
            i64::from(limit).into(),
        ];
        self.fetch(&sql, &args).await
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
        let patterns: Vec<String> = terms.iter().map(|t| like_pattern(t)).collect();
        let mut sql = format!("SELECT {COLUMNS} FROM decisions WHERE tenant_id = $1");
        let mut args = vec![Arg::Text(tenant.as_str())];
        if !terms.is_empty() {
            let likes: Vec<String> = (2..patterns.len() + 2)
                .map(|n| format!("search_text LIKE ${n} ESCAPE '\\'"))
                .collect();
            sql.push_str(&format!(" AND ({})", likes.join(" OR ")));
            args.extend(patterns.iter().map(|p| Arg::Text(p)));
        }
        let cap = if terms.is_empty() {
            i64::try_from(limit).unwrap_or(i64::MAX)
        } else {
            CANDIDATES
        };
        sql.push_str(&format!(
            " ORDER BY decided_at_ms DESC, id DESC LIMIT ${}",
            args.len() + 1
        ));
        args.push(Arg::Int(cap));
        let mut found = self.fetch(&sql, &args).await?;
        if !terms.is_empty() {
            // Stable sort: equal scores keep the newest-first order of the query.
            found.sort_by_key(|d| std::cmp::Reverse(score(&d.decision, &terms)));
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn fetch(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<StoredDecision>, DecisionError> {
        let rows: Vec<DecisionRow> = self.db.fetch_all(sql, args).await?;
        rows.into_iter().map(StoredDecision::try_from).collect()
    }
}
