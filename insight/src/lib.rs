//! What the records say. A call centre buys the bot to cut cost and serve better and has to prove
//! both: this crate turns the store's calls, turns, events, queue log and follow-ups into
//!
//! - [`kpi`]: the figures a contact centre is judged by (containment, first response, speed of
//!   answer and service level, handling time, transfers and their reasons, abandonment, CSAT,
//!   sentiment, intents), each with its definition beside it ([`kpi::DEFINITIONS`]), by hour, day
//!   and queue;
//! - [`roi`]: cost per call with and without the bot and the payback period, from configured costs;
//! - [`gaps`]: what callers ask that the knowledge base does not cover, grouped by meaning, and the
//!   topics rising this week against last;
//! - [`table`]: the reports as CSV tables.
//!
//! Everything here is computed from a [`Dataset`] in memory by plain functions: one definition in
//! Rust gives the same figure on SQLite and on PostgreSQL, and a test can recount any figure from
//! the same records. The dataset is bounded by its period (a month of a busy hotline is a few
//! hundred thousand rows; the store loads only the period and the day after it).

pub mod gaps;
pub mod kpi;
pub mod roi;
pub mod table;

use ivr_store::{CallRecord, FollowUp, QueueLogLine, Store, StoreError};
use jiff::{SignedDuration, Timestamp};

/// A half-open span of time `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// A `--from`/`--to` (or `?from=&to=`) that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("{0:?} is neither a day (2026-12-01) nor an RFC 3339 time (2026-12-01T08:00:00Z)")]
    Unreadable(String),
    #[error("the period is empty: from {from} is not before to {to}")]
    Empty { from: Timestamp, to: Timestamp },
    #[error("{0} is outside the calendar")]
    OutOfRange(String),
}

impl Period {
    /// The period a person asks for: each bound a day in the company's time zone `tz` (`to`
    /// includes its day) or an RFC 3339 time; without `to`, up to `now`; without `from`, the 30
    /// days before `to`.
    pub fn parse(from: Option<&str>, to: Option<&str>, tz: &jiff::tz::TimeZone, now: Timestamp) -> Result<Self, PeriodError> {
        let to = match to.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => bound(s, tz, true)?,
            None => now,
        };
        let from = match from.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => bound(s, tz, false)?,
            None => to.checked_sub(SignedDuration::from_hours(30 * 24)).map_err(|e| PeriodError::OutOfRange(e.to_string()))?,
        };
        if from >= to {
            return Err(PeriodError::Empty { from, to });
        }
        Ok(Self { from, to })
    }

    /// The period of the same length just before this one (what a trend is measured against).
    pub fn previous(&self) -> Self {
        let len = self.to.duration_since(self.from);
        Self { from: self.from.checked_sub(len).unwrap_or(Timestamp::MIN), to: self.from }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }

    /// Its length in days (fractional).
    pub fn days(&self) -> f64 {
        self.to.duration_since(self.from).as_secs_f64() / 86_400.0
    }
}

/// A day in `tz` (its start, or with `end` the start of the next day) or an RFC 3339 time.
fn bound(s: &str, tz: &jiff::tz::TimeZone, end: bool) -> Result<Timestamp, PeriodError> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let day: jiff::civil::Date = s.parse().map_err(|_| PeriodError::Unreadable(s.to_string()))?;
    let day = if end { day.tomorrow().map_err(|e| PeriodError::OutOfRange(e.to_string()))? } else { day };
    day.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| PeriodError::OutOfRange(e.to_string()))
}

/// The records a report is made from: the calls that started in the period (and those of the
/// following repeat window, to see who called again), the queue's log lines of those calls, and
/// the follow-ups created in the period.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub calls: Vec<CallRecord>,
    pub queue: Vec<QueueLogLine>,
    pub follow_ups: Vec<FollowUp>,
}

/// How long after a call a call from the same number means the first was not resolved.
pub const REPEAT_WINDOW: SignedDuration = SignedDuration::from_hours(24);

impl Dataset {
    /// Loads what `period`'s reports need from the store.
    pub async fn load(store: &Store, period: Period) -> Result<Self, StoreError> {
        let until = period.to.checked_add(REPEAT_WINDOW).unwrap_or(period.to);
        let (from, until) = (period.from.to_string(), until.to_string());
        let calls = store.calls_between(&from, &until).await?;
        let ids: std::collections::HashSet<&str> = calls.iter().map(|c| c.call.id.as_str()).collect();
        // The store's window is a second wider than the exact one (see `calls_between`).
        let queue = store.queue_events_of_calls_between(&from, &until).await?.into_iter().filter(|l| l.call_id.as_deref().is_some_and(|c| ids.contains(c))).collect();
        let follow_ups = store.follow_ups().await?.into_iter().filter(|f| at(&f.created_at).is_some_and(|t| period.contains(t))).collect();
        Ok(Self { calls, queue, follow_ups })
    }
}

/// An RFC 3339 time from the store (none when it cannot be read).
pub fn at(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Mean, median and 90th percentile of a sample (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Stat {
    pub count: usize,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
}

impl Stat {
    pub fn of(mut values: Vec<f64>) -> Self {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let rank = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self { count: n, mean: Some(values.iter().sum::<f64>() / n as f64), p50: Some(rank(0.5)), p90: Some(rank(0.9)) }
    }
}

/// `part / whole`, none for an empty whole.
pub fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_read_as_days_in_the_company_zone_or_times() {
        let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let now: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let p = Period::parse(Some("2026-12-01"), Some("2026-12-01"), &tz, now).unwrap();
        assert_eq!((p.from.to_string(), p.to.to_string()), ("2026-11-30T23:00:00Z".into(), "2026-12-01T23:00:00Z".into()));
        let p = Period::parse(None, None, &tz, now).unwrap();
        assert_eq!((p.to, p.days()), (now, 30.0));
        assert_eq!(p.previous().to, p.from);
        assert_eq!(p.previous().days(), 30.0);
        assert!(matches!(Period::parse(Some("yesterday"), None, &tz, now), Err(PeriodError::Unreadable(_))));
        assert!(matches!(Period::parse(Some("2026-12-02"), Some("2026-12-01"), &tz, now), Err(PeriodError::Empty { .. })));
        assert!(Period::parse(Some("2026-12-01T08:00:00Z"), Some(""), &tz, now).is_ok(), "an empty bound is no bound");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = Stat::of((1..=10).map(f64::from).collect());
        assert_eq!((s.count, s.mean, s.p50, s.p90), (10, Some(5.5), Some(5.0), Some(9.0)));
        assert_eq!(Stat::of(vec![]), Stat::default());
        assert_eq!(Stat::of(vec![3.0]).p90, Some(3.0));
    }
}
