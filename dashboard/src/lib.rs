//! The supervisors' dashboard at `/dashboard`, served by `ivr serve`: one HTML page (script inline,
//! Chart.js compiled into the binary and served from `/dashboard/chart.js`: no CDN, no build step)
//! over a JSON API for signed-in supervisors (the agents' console's sign-in; agents get 403).
//!
//! - the KPIs of a period beside those of the period before (the trend) and their definitions,
//!   calls by day and hour, transfer reasons, intents, CSAT and sentiment;
//! - the live queue and agent board (from the desk) and the calls in progress;
//! - the knowledge gaps (unanswered questions grouped by meaning) and the topics rising this week;
//! - the call browser: search by number, period, intent and outcome; a call's transcript with its
//!   timings and events; its stereo recording (each play written to the audit log first);
//! - the ROI report, and every report as CSV (each download audited as an export).
//!
//! Every figure comes from `ivr-insight` over the store, the same code as `ivr report`: the
//! dashboard and the CLI cannot disagree. Numbers a caller read or keyed are masked in the store
//! before they are written (`ivr-privacy`), so the dashboard never has them to show.

pub mod search;

use std::sync::Arc;

use call_control::desk::Desk;
use ivr_insight::{gaps, kpi, roi, table, Dataset, Period};
use ivr_web::axum::extract::rejection::QueryRejection;
use ivr_web::axum::extract::{FromRequestParts, Path, Query, State};
use ivr_web::axum::http::request::Parts;
use ivr_web::axum::http::{header, HeaderValue};
use ivr_web::axum::response::{Html, IntoResponse, Response};
use ivr_web::axum::routing::get;
use ivr_web::axum::{Json, Router};
use ivr_web::ApiError;

/// Sentence embeddings of texts (the dialogue's MiniLM, lent by whoever loaded it).
pub type Embed = Arc<dyn Fn(&[&str]) -> Result<Vec<Vec<f32>>, String> + Send + Sync>;

/// What the dashboard works with.
pub struct Dashboard {
    pub store: ivr_store::Store,
    /// The live queue (none when the server has no `[sip.queue]`).
    pub desk: Option<Arc<Desk>>,
    pub settings: kpi::Settings,
    pub costs: roi::Costs,
    /// For the knowledge gaps and rising topics.
    pub embed: Embed,
}

const PAGE: &str = include_str!("../static/dashboard.html");
const CHART_JS: &str = include_str!("../static/vendor/chart.js/chart.umd.min.js");

pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/dashboard", get(|| async { Html(PAGE) }))
        .route("/dashboard/chart.js", get(chart_js))
        .route("/dashboard/api/kpi", get(kpis))
        .route("/dashboard/api/roi", get(roi_report))
        .route("/dashboard/api/gaps", get(knowledge_gaps))
        .route("/dashboard/api/live", get(live))
        .route("/dashboard/api/calls", get(calls))
        .route("/dashboard/api/calls/{id}", get(call))
        .route("/dashboard/api/calls/{id}/recording", get(recording))
        .route("/dashboard/api/report.csv", get(report_csv))
        .with_state(dashboard)
}

async fn chart_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], CHART_JS).into_response()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// A signed-in supervisor.
struct Supervisor(String);

impl FromRequestParts<Arc<Dashboard>> for Supervisor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> Result<Self, Self::Rejection> {
        Ok(Self(agent_desk::supervisor(&d.store, &parts.headers).await?.agent))
    }
}

/// `?from=&to=`: days in the company's time zone or RFC 3339 times (as `ivr report` takes them).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

impl Dashboard {
    fn period(&self, from: Option<&str>, to: Option<&str>) -> Result<Period, ApiError> {
        Period::parse(from, to, &self.settings.timezone, jiff::Timestamp::now()).map_err(|e| ApiError::bad_request(e.to_string()))
    }

    async fn load(&self, p: Period) -> Result<Dataset, ApiError> {
        Dataset::load(&self.store, p).await.map_err(internal)
    }

    async fn kpis(&self, p: Period) -> Result<(Dataset, kpi::Kpis), ApiError> {
        let data = self.load(p).await?;
        let k = kpi::compute(&data, p, &self.settings);
        Ok((data, k))
    }

    async fn gaps(&self, p: Period) -> Result<gaps::Gaps, ApiError> {
        let data = self.load(p).await?;
        let embed = self.embed.clone();
        ivr_web::tokio::task::spawn_blocking(move || gaps::report(&data.calls, p, |texts| embed(texts)))
        .await
        .map_err(internal)?
        .map_err(|e| ApiError::internal(format!("the sentence embeddings failed: {e}")))
    }

    async fn audit(&self, actor: &str, action: &str, target: Option<&str>, detail: serde_json::Value) -> Result<(), ApiError> {
        self.store.audit(&ivr_store::AuditLine::now(actor, action, target, Some(detail))).await.map_err(internal)
    }
}

fn definitions(d: &[(&str, &str)]) -> serde_json::Value {
    d.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>().into()
}

/// `GET /dashboard/api/kpi?from&to`: the period's KPIs, those of the period of the same length
/// before it (the trend), and the definitions.
async fn kpis(State(d): State<Arc<Dashboard>>, _s: Supervisor, q: Result<Query<PeriodQuery>, QueryRejection>) -> Result<Json<serde_json::Value>, ApiError> {
    let q = query(q)?;
    let p = d.period(q.from.as_deref(), q.to.as_deref())?;
    let (_, now) = d.kpis(p).await?;
    let (_, before) = d.kpis(p.previous()).await?;
    Ok(Json(serde_json::json!({"kpis": now, "previous": before, "definitions": definitions(kpi::DEFINITIONS), "timezone": d.settings.timezone.iana_name()})))
}

/// `GET /dashboard/api/roi?from&to`.
async fn roi_report(State(d): State<Arc<Dashboard>>, _s: Supervisor, q: Result<Query<PeriodQuery>, QueryRejection>) -> Result<Json<serde_json::Value>, ApiError> {
    let q = query(q)?;
    let p = d.period(q.from.as_deref(), q.to.as_deref())?;
    let (data, k) = d.kpis(p).await?;
    Ok(Json(serde_json::json!({"roi": roi::compute(&data, &k, &d.costs), "definitions": definitions(roi::DEFINITIONS)})))
}

/// `GET /dashboard/api/gaps?from&to`: the period's knowledge gaps, and the topics rising in the
/// week up to its end against the week before.
async fn knowledge_gaps(State(d): State<Arc<Dashboard>>, _s: Supervisor, q: Result<Query<PeriodQuery>, QueryRejection>) -> Result<Json<serde_json::Value>, ApiError> {
    let q = query(q)?;
    let p = d.period(q.from.as_deref(), q.to.as_deref())?;
    let g = d.gaps(p).await?;
    let (this, last) = gaps::weeks_to(p.to);
    let data = d.load(Period { from: last.from, to: this.to }).await?;
    let embed = d.embed.clone();
    let rising = ivr_web::tokio::task::spawn_blocking(move || {
        let embed_one = |t: &str| embed(&[t]).ok().and_then(|mut v| v.pop());
        gaps::rising(&gaps::questions(&data.calls, this), &gaps::questions(&data.calls, last), &embed_one)
    })
    .await
    .map_err(internal)?;
    Ok(Json(serde_json::json!({"gaps": g, "rising": rising, "this_week": this, "last_week": last})))
}

/// `GET /dashboard/api/live`: the agents, the waiting callers and the calls in progress.
async fn live(State(d): State<Arc<Dashboard>>, _s: Supervisor) -> Json<serde_json::Value> {
    let active = call_control::metrics::metrics().calls_active.get();
    let Some(desk) = &d.desk else {
        return Json(serde_json::json!({"queue": false, "agents": [], "waiting": [], "calls_active": active}));
    };
    let (agents, waiting) = desk.lines();
    Json(serde_json::json!({"queue": true, "agents": agents, "waiting": waiting, "calls_active": active}))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CallQuery {
    from: Option<String>,
    to: Option<String>,
    number: Option<String>,
    intent: Option<String>,
    outcome: Option<String>,
    limit: Option<usize>,
}

/// `GET /dashboard/api/calls?number&from&to&intent&outcome&limit`: the matching calls, newest
/// first (at most `limit`, 200 by default), how many matched, and the intents and outcomes the
/// filters offer.
async fn calls(State(d): State<Arc<Dashboard>>, _s: Supervisor, q: Result<Query<CallQuery>, QueryRejection>) -> Result<Json<serde_json::Value>, ApiError> {
    let q = query(q)?;
    let p = d.period(q.from.as_deref(), q.to.as_deref())?;
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let outcome = nonempty(q.outcome);
    if let Some(o) = outcome.as_deref().filter(|o| !search::OUTCOMES.contains(o)) {
        return Err(ApiError::bad_request(format!("outcome {o:?}: one of {}", search::OUTCOMES.join(", "))));
    }
    let filter = search::Filter { number: nonempty(q.number), intent: nonempty(q.intent), outcome };
    let data = d.load(p).await?;
    let mut intents: Vec<&str> = data.calls.iter().flat_map(|c| c.turns.iter().filter_map(|t| t.intent.as_deref())).collect();
    intents.sort_unstable();
    intents.dedup();
    let found = search::search(&data, p, &filter);
    let total = found.len();
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    Ok(Json(serde_json::json!({"period": p, "total": total, "calls": &found[..total.min(limit)], "intents": intents, "outcomes": search::OUTCOMES})))
}

/// `GET /dashboard/api/calls/{id}`: the call with its turns (timings per stage), events and notes.
async fn call(State(d): State<Arc<Dashboard>>, _s: Supervisor, Path(id): Path<String>) -> Result<Json<ivr_store::CallRecord>, ApiError> {
    d.store.call(&id).await.map_err(internal)?.map(Json).ok_or_else(|| ApiError::not_found(format!("no call {id:?}")))
}

/// `GET /dashboard/api/calls/{id}/recording`: the call's stereo WAV (caller left, bot right). The
/// play is written to the audit log before a byte is sent.
async fn recording(State(d): State<Arc<Dashboard>>, s: Supervisor, Path(id): Path<String>) -> Result<Response, ApiError> {
    let record = d.store.call(&id).await.map_err(internal)?.ok_or_else(|| ApiError::not_found(format!("no call {id:?}")))?;
    let path = record.call.recording.ok_or_else(|| ApiError::not_found(format!("call {id:?} has no recording (not recorded, or removed by the retention period)")))?;
    let bytes = ivr_web::tokio::fs::read(&path).await.map_err(|e| ApiError::not_found(format!("the recording of {id:?} cannot be read: {e}")))?;
    d.audit(&s.0, "listen", Some(&id), serde_json::json!({"kind": "call", "from": "dashboard"})).await?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav")), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], bytes).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvQuery {
    kind: String,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /dashboard/api/report.csv?kind=kpi|roi|gaps&from&to`: a report as a CSV download (the
/// same table as `ivr report KIND --csv`), audited as an export.
async fn report_csv(State(d): State<Arc<Dashboard>>, s: Supervisor, q: Result<Query<CsvQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let q = query(q)?;
    let p = d.period(q.from.as_deref(), q.to.as_deref())?;
    let t = match q.kind.as_str() {
        "kpi" => table::figures(&d.kpis(p).await?.1, kpi::DEFINITIONS).map_err(internal)?,
        "roi" => {
            let (data, k) = d.kpis(p).await?;
            table::figures(&roi::compute(&data, &k, &d.costs), roi::DEFINITIONS).map_err(internal)?
        }
        "gaps" => table::gaps(&d.gaps(p).await?),
        other => return Err(ApiError::bad_request(format!("kind {other:?}: kpi, roi or gaps"))),
    };
    let csv = t.to_csv().map_err(internal)?;
    d.audit(&s.0, "export", None, serde_json::json!({"kind": format!("report.{}", q.kind), "format": "csv", "from": p.from, "to": p.to, "rows": t.rows.len()})).await?;
    let name = format!("attachment; filename=\"{}-{}-{}.csv\"", q.kind, p.from.strftime("%Y%m%d"), p.to.strftime("%Y%m%d"));
    let disposition = HeaderValue::from_str(&name).map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")), (header::CONTENT_DISPOSITION, disposition)], csv).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundled_chart_library_is_whole() {
        // The file is Chart.js's UMD build: it defines the global `Chart`, and its licence is beside it.
        assert!(super::CHART_JS.len() > 150_000 && super::CHART_JS.contains("Chart.js v4.6.1"));
        assert!(include_str!("../static/vendor/chart.js/LICENSE.md").contains("MIT"));
    }
}
