//! SQL for activity events on both backends (placeholders and the `details` type differ:
//! TEXT on SQLite, JSONB on PostgreSQL). Every statement is filtered by tenant.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::{ActivityError, ActivityEvent, ActivitySource};
use crate::db::Database;
use crate::ids::TenantId;

const INSERT_SQLITE: &str = "INSERT INTO activity_events (tenant_id, source, kind, title, url, \
     actor, occurred_at_ms, details, dedupe_key, recorded_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (tenant_id, dedupe_key) DO NOTHING";
const INSERT_POSTGRES: &str = "INSERT INTO activity_events (tenant_id, source, kind, title, url, \
     actor, occurred_at_ms, details, dedupe_key, recorded_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, CAST($8 AS JSONB), $9, $10) \
     ON CONFLICT (tenant_id, dedupe_key) DO NOTHING";

const SELECT_SQLITE: &str = "SELECT id, tenant_id, source, kind, title, url, actor, \
     occurred_at_ms, details, dedupe_key FROM activity_events \
     WHERE tenant_id = ?1 AND occurred_at_ms >= ?2 AND occurred_at_ms < ?3 \
     ORDER BY occurred_at_ms, id LIMIT ?4";
const SELECT_POSTGRES: &str = "SELECT id, tenant_id, source, kind, title, url, actor, \
     occurred_at_ms, CAST(details AS TEXT) AS details, dedupe_key FROM activity_events \
     WHERE tenant_id = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3 \
     ORDER BY occurred_at_ms, id LIMIT $4";

const COUNT_SQLITE: &str = "SELECT COUNT(*) FROM activity_events \
     WHERE tenant_id = ?1 AND occurred_at_ms >= ?2 AND occurred_at_ms < ?3";
const COUNT_POSTGRES: &str = "SELECT COUNT(*) FROM activity_events \
     WHERE tenant_id = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3";

/// Writes and reads activity events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ActivityStore {
    db: Database,
}

/// Binds an event's fields in `INSERT` order (same code for both backends).
macro_rules! bind_event {
    ($query:expr, $e:expr, $details:expr, $now:expr) => {{
        let e = $e;
        $query
            .bind(e.tenant.as_str())
            .bind(e.source.as_str())
            .bind(e.kind.as_str())
            .bind(e.title.as_str())
            .bind(e.url.as_deref())
            .bind(e.actor.as_deref())
            .bind(e.occurred_at.timestamp_millis())
            .bind($details)
            .bind(e.dedupe_key.as_str())
            .bind($now)
    }};
}

fn from_row<R: Row>(row: &R) -> Result<ActivityEvent, ActivityError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let id: i64 = row.try_get("id")?;
    let corrupt = |message: String| ActivityError::Corrupt { id, message };
    let source: String = row.try_get("source")?;
    let details: String = row.try_get("details")?;
    let ms: i64 = row.try_get("occurred_at_ms")?;
    Ok(ActivityEvent {
        tenant: TenantId::new(row.try_get::<String, _>("tenant_id")?),
        source: ActivitySource::parse(&source)
            .ok_or_else(|| corrupt(format!("unknown source {source:?}")))?,
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        url: row.try_get("url")?,
        actor: row.try_get("actor")?,
        occurred_at: Utc
            .timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| corrupt(format!("occurred_at_ms {ms} is out of range")))?,
        details: serde_json::from_str(&details)
            .map_err(|e| corrupt(format!("details are not JSON: {e}")))?,
        dedupe_key: row.try_get("dedupe_key")?,
    })
}

impl ActivityStore {
    /// A store on `db` (migrated).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Stores one event. Returns `false` (and changes nothing) when the tenant already has an
    /// event with this dedupe key: a job that runs twice stores once.
    #[tracing::instrument(name = "activity.record", skip_all, fields(tenant = %event.tenant, kind = %event.kind), err(level = "warn", Display))]
    pub async fn record(&self, event: &ActivityEvent) -> Result<bool, ActivityError> {
        let details = event.details.to_string();
        let now = Utc::now().timestamp_millis();
        let inserted = match &self.db {
            Database::Sqlite(pool) => bind_event!(sqlx::query(INSERT_SQLITE), event, &details, now)
                .execute(pool)
                .await?
                .rows_affected(),
            Database::Postgres(pool) => {
                bind_event!(sqlx::query(INSERT_POSTGRES), event, &details, now)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        } == 1;
        if !inserted {
            tracing::debug!(key = %event.dedupe_key, "activity already recorded");
        }
        Ok(inserted)
    }

    /// The tenant's events with `from <= occurred_at < to`, oldest first, at most `limit`.
    #[tracing::instrument(name = "activity.between", skip_all, fields(tenant = %tenant), err(level = "warn", Display))]
    pub async fn between(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ActivityEvent>, ActivityError> {
        let (from, to, limit) = (
            from.timestamp_millis(),
            to.timestamp_millis(),
            i64::from(limit),
        );
        match &self.db {
            Database::Sqlite(pool) => sqlx::query(SELECT_SQLITE)
                .bind(tenant.as_str())
                .bind(from)
                .bind(to)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(from_row)
                .collect(),
            Database::Postgres(pool) => sqlx::query(SELECT_POSTGRES)
                .bind(tenant.as_str())
                .bind(from)
                .bind(to)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(from_row)
                .collect(),
        }
    }

    /// How many events the tenant has with `from <= occurred_at < to`.
    pub async fn count_between(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64, ActivityError> {
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        let n: i64 = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_scalar(COUNT_SQLITE)
                    .bind(tenant.as_str())
                    .bind(from)
                    .bind(to)
                    .fetch_one(pool)
                    .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar(COUNT_POSTGRES)
                    .bind(tenant.as_str())
                    .bind(from)
                    .bind(to)
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
