//! UTC calendar periods that quotas count in: the day and the month a moment falls in, the key
//! suffix naming each, and when each resets.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

/// Extra lifetime of a counter after its period ends, so a report read just after midnight still
/// sees yesterday's figure and a slow clock never resurrects an expired key.
const COUNTER_SLACK_SECS: i64 = 3600;

/// The day and month a moment falls in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Periods {
    /// `YYYYMMDD` of the UTC day.
    pub day: String,
    /// `YYYYMM` of the UTC month.
    pub month: String,
    /// Next UTC midnight.
    pub day_resets_at: DateTime<Utc>,
    /// First moment of the next UTC month.
    pub month_resets_at: DateTime<Utc>,
    /// First moment of this UTC month.
    pub month_started_at: DateTime<Utc>,
}

impl Periods {
    /// The periods containing `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        let date = now.date_naive();
        let next_day = date + Duration::days(1);
        let (y, m) = if date.month() == 12 {
            (date.year() + 1, 1)
        } else {
            (date.year(), date.month() + 1)
        };
        let next_month = NaiveDate::from_ymd_opt(y, m, 1).expect("first of a month exists");
        let midnight =
            |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"));
        Self {
            day: date.format("%Y%m%d").to_string(),
            month: date.format("%Y%m").to_string(),
            day_resets_at: midnight(next_day),
            month_resets_at: midnight(next_month),
            month_started_at: midnight(date.with_day(1).expect("day 1 exists")),
        }
    }

    /// Seconds the day counter must live when written at `now`.
    pub fn day_ttl_secs(&self, now: DateTime<Utc>) -> i64 {
        (self.day_resets_at - now).num_seconds().max(1) + COUNTER_SLACK_SECS
    }

    /// Seconds the month counter must live when written at `now`.
    pub fn month_ttl_secs(&self, now: DateTime<Utc>) -> i64 {
        (self.month_resets_at - now).num_seconds().max(1) + COUNTER_SLACK_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn december_rolls_into_next_year() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 30).unwrap();
        let p = Periods::at(now);
        assert_eq!(p.day, "20261231");
        assert_eq!(p.month, "202612");
        assert_eq!(
            p.day_resets_at,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(p.month_resets_at, p.day_resets_at);
        assert_eq!(p.day_ttl_secs(now), 30 + COUNTER_SLACK_SECS);
    }

    #[test]
    fn mid_month_resets_on_the_first() {
        let now = Utc.with_ymd_and_hms(2026, 2, 14, 12, 0, 0).unwrap();
        let p = Periods::at(now);
        assert_eq!(
            p.day_resets_at,
            Utc.with_ymd_and_hms(2026, 2, 15, 0, 0, 0).unwrap()
        );
        assert_eq!(
            p.month_resets_at,
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            p.month_started_at,
            Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()
        );
    }
}
