//! Usage records in SQL: idempotent inserts and per-tenant summaries, on SQLite or PostgreSQL.
//! Every query filters by `tenant_id`.

use std::collections::BTreeMap;

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use chrono::{DateTime, Utc};

use super::metrics::UsageMetrics;
use super::{format_dollars, TokenCounts};
use super::{OperationUsage, UsageError, UsageRecord, UsageSummary};
use crate::db::Database;
use crate::ids::TenantId;

const INSERT: &str = "INSERT INTO usage_records (tenant_id, user_id, occurred_at_ms, operation, service, model, \
     input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, storage_bytes, api_calls, \
     cost_micros, job_id, step, idempotency_key) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (tenant_id, idempotency_key) DO NOTHING";

const SUMMARY: &str = "SELECT operation, \
     CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, \
     CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
     CAST(SUM(cache_creation_tokens) AS BIGINT) AS cache_creation_tokens, \
     CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens, \
     CAST(SUM(storage_bytes) AS BIGINT) AS storage_bytes, \
     CAST(SUM(api_calls) AS BIGINT) AS api_calls, \
     CAST(SUM(cost_micros) AS BIGINT) AS cost_micros, \
     CAST(COUNT(*) AS BIGINT) AS records, \
     CAST(COUNT(DISTINCT COALESCE(job_id, idempotency_key)) AS BIGINT) AS jobs \
     FROM usage_records \
     WHERE tenant_id = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3 \
     GROUP BY operation ORDER BY operation";

#[derive(sqlx::FromRow)]
struct GroupRow {
    operation: String,
    input_tokens: i64,
    output_tokens: i64,
    cache_creation_tokens: i64,
    cache_read_tokens: i64,
    storage_bytes: i64,
    api_calls: i64,
    cost_micros: i64,
    records: i64,
    jobs: i64,
}

/// Writes and reads usage records.
#[derive(Clone, Debug)]
pub struct UsageStore {
    db: Database,
    metrics: Option<UsageMetrics>,
}

fn to_i64(v: u64, what: &'static str) -> Result<i64, UsageError> {
    i64::try_from(v).map_err(|_| UsageError::OutOfRange(what))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl UsageStore {
    /// A store on `db` (migrated) without metrics.
    pub fn new(db: Database) -> Self {
        Self { db, metrics: None }
    }

    /// A store that also updates the cost metrics on every new record.
    pub fn with_metrics(db: Database, metrics: UsageMetrics) -> Self {
        Self {
            db,
            metrics: Some(metrics),
        }
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The cost metrics this store updates, if any.
    pub fn metrics(&self) -> Option<&UsageMetrics> {
        self.metrics.as_ref()
    }

    /// Records a call already paid for (a Claude answer), the moment it arrives: like
    /// [`UsageStore::record`], retried with backoff for about five seconds when the database
    /// fails, since the call cannot be taken back. The caller logs a final failure and keeps the
    /// answer (failing the job would only pay for it again).
    pub async fn record_paid(&self, record: &UsageRecord) -> Result<bool, UsageError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(1))
            .with_max_times(8)
            .with_jitter();
        (|| self.record(record))
            .retry(backoff)
            .when(|e| matches!(e, UsageError::Db(_)))
            .notify(|e, wait| {
                tracing::warn!(error = %e, ?wait, key = %record.idempotency_key, "storing a paid call's usage failed; retrying");
            })
            .await
    }

    /// Records one operation. Returns `false` (and changes nothing) when the tenant already has a
    /// record with this idempotency key: the same record stored twice counts once.
    #[tracing::instrument(name = "usage.record", skip_all, fields(tenant = %record.tenant, operation = %record.operation), err(level = "warn", Display))]
    pub async fn record(&self, record: &UsageRecord) -> Result<bool, UsageError> {
        let r = record;
        let args = [
            r.tenant.as_str().into(),
            r.user.as_deref().into(),
            r.timestamp.timestamp_millis().into(),
            r.operation.as_str().into(),
            r.service.as_str().into(),
            r.model.as_deref().into(),
            to_i64(r.tokens.input, "input tokens")?.into(),
            to_i64(r.tokens.output, "output tokens")?.into(),
            to_i64(r.tokens.cache_creation, "cache creation tokens")?.into(),
            to_i64(r.tokens.cache_read, "cache read tokens")?.into(),
            to_i64(r.storage_bytes, "storage bytes")?.into(),
            to_i64(r.api_calls, "api calls")?.into(),
            r.cost_micros.into(),
            r.job_id.as_ref().map(|j| j.as_str()).into(),
            r.step.as_deref().into(),
            r.idempotency_key.as_str().into(),
        ];
        let inserted = self.db.execute(INSERT, &args).await? == 1;
        if inserted {
            if let Some(m) = &self.metrics {
                m.observe(record);
            }
        } else {
            tracing::debug!(key = %record.idempotency_key, "usage already recorded");
        }
        Ok(inserted)
    }

    /// The tenant's usage with `from <= timestamp < to`.
    #[tracing::instrument(name = "usage.summary", skip_all, fields(tenant = %tenant), err(level = "warn", Display))]
    pub async fn summary(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<UsageSummary, UsageError> {
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        let args = [tenant.as_str().into(), from_ms.into(), to_ms.into()];
        let rows: Vec<GroupRow> = self.db.fetch_all(SUMMARY, &args).await?;
        Ok(summarize(tenant, from, to, rows))
    }
}

fn summarize(
    tenant: &TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rows: Vec<GroupRow>,
) -> UsageSummary {
    let mut by_operation = BTreeMap::new();
    let mut tokens = TokenCounts::default();
    let (mut api_calls, mut storage_bytes, mut cost, mut transforms) = (0u64, 0u64, 0i64, 0u64);
    for row in rows {
        let t = TokenCounts {
            input: to_u64(row.input_tokens),
            output: to_u64(row.output_tokens),
            cache_creation: to_u64(row.cache_creation_tokens),
            cache_creation_1h: 0,
            cache_read: to_u64(row.cache_read_tokens),
        };
        tokens.add(&t);
        api_calls += to_u64(row.api_calls);
        storage_bytes += to_u64(row.storage_bytes);
        cost = cost.saturating_add(row.cost_micros);
        if row.operation == super::ops::TRANSFORM {
            transforms = to_u64(row.jobs);
        }
        by_operation.insert(
            row.operation.clone(),
            OperationUsage {
                operation: row.operation,
                tokens: t,
                api_calls: to_u64(row.api_calls),
                records: to_u64(row.records),
                jobs: to_u64(row.jobs),
                estimated_cost_micros: row.cost_micros,
                estimated_cost: format_dollars(row.cost_micros),
            },
        );
    }
    UsageSummary {
        tenant: tenant.clone(),
        from,
        to,
        tokens,
        api_calls,
        storage_bytes,
        estimated_cost_micros: cost,
        estimated_cost: format_dollars(cost),
        transforms,
        by_operation: by_operation.into_values().collect(),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod paid_tests;
