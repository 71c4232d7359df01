//! SQL for activity events, one statement for both backends (only the `details` column differs:
//! TEXT on SQLite, JSONB on PostgreSQL, see [`Backend::json`]). Every statement is filtered by
//! tenant.

use chrono::{DateTime, Utc};

use super::{ActivityError, ActivityEvent, ActivitySource};
use crate::db::{stored_time, Backend, Database};
use crate::ids::TenantId;

fn insert_sql(backend: Backend) -> String {
    format!(
        "INSERT INTO activity_events (tenant_id, source, kind, title, url, actor, \
         occurred_at_ms, details, dedupe_key, recorded_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, {}, $9, $10) \
         ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
        backend.json("$8")
    )
}

const SELECT: &str = "SELECT id, tenant_id, source, kind, title, url, actor, \
     occurred_at_ms, CAST(details AS TEXT) AS details, dedupe_key FROM activity_events \
     WHERE tenant_id = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3 \
     ORDER BY occurred_at_ms, id LIMIT $4";

const COUNT: &str = "SELECT COUNT(*) FROM activity_events \
     WHERE tenant_id = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3";

/// Writes and reads activity events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ActivityStore {
    db: Database,
}

/// A stored event as the table holds it.
#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    tenant_id: String,
    source: String,
    kind: String,
    title: String,
    url: Option<String>,
    actor: Option<String>,
    occurred_at_ms: i64,
    details: String,
    dedupe_key: String,
}

impl TryFrom<EventRow> for ActivityEvent {
    type Error = ActivityError;

    fn try_from(row: EventRow) -> Result<Self, ActivityError> {
        let corrupt = |message| ActivityError::Corrupt {
            id: row.id,
            message,
        };
        Ok(ActivityEvent {
            tenant: TenantId::new(row.tenant_id),
            source: ActivitySource::parse(&row.source)
                .ok_or_else(|| corrupt(format!("unknown source {:?}", row.source)))?,
            kind: row.kind,
            title: row.title,
            url: row.url,
            actor: row.actor,
            occurred_at: stored_time("occurred_at_ms", row.occurred_at_ms).map_err(corrupt)?,
            details: serde_json::from_str(&row.details)
                .map_err(|e| corrupt(format!("details are not JSON: {e}")))?,
            dedupe_key: row.dedupe_key,
        })
    }
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
        let args = [
            event.tenant.as_str().into(),
            event.source.as_str().into(),
            event.kind.as_str().into(),
            event.title.as_str().into(),
            event.url.as_deref().into(),
            event.actor.as_deref().into(),
            event.occurred_at.timestamp_millis().into(),
            details.as_str().into(),
            event.dedupe_key.as_str().into(),
            now.into(),
        ];
        let sql = insert_sql(self.db.backend());
        let inserted = self.db.execute(&sql, &args).await? == 1;
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
        let args = [tenant.as_str().into(), from.into(), to.into(), limit.into()];
        let rows: Vec<EventRow> = self.db.fetch_all(SELECT, &args).await?;
        rows.into_iter().map(ActivityEvent::try_from).collect()
    }

    /// How many events the tenant has with `from <= occurred_at < to`.
    pub async fn count_between(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64, ActivityError> {
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        let args = [tenant.as_str().into(), from.into(), to.into()];
        let (n,): (i64,) = self.db.fetch_one(COUNT, &args).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
