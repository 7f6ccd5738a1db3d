//! The ROI report: what the calls of a period would have cost with people alone, what they cost
//! with the bot, and when the bot pays for itself.
//!
//! - Without the bot every handled call is an agent's call of the agents' average length (their
//!   measured talk time in the period; the configured `agent_minutes_per_call` when no agent call
//!   was completed).
//! - With the bot, the company pays the agents' minutes actually spent on transferred calls and
//!   the bot's infrastructure (per month, prorated to the period).
//! - Savings per month are the difference scaled to a month (30.4375 days); the payback period is
//!   the initial investment divided by them (none while the bot saves nothing).

use serde::Serialize;

use crate::kpi::Kpis;
use crate::Dataset;

/// Days in an average month (365.25 / 12).
pub const MONTH_DAYS: f64 = 30.4375;

/// Each ROI figure's key and how it is computed (shown beside it on the dashboard and in CSV).
pub const DEFINITIONS: &[(&str, &str)] = &[
    ("calls", "Calls that started in the period."),
    ("handled", "Calls the bot answered."),
    ("contained", "Handled calls the bot resolved (see the KPI `contained`)."),
    ("transferred", "Handled calls handed to people."),
    ("agent_minutes_per_call", "An agent's minutes per call: the mean talk time of the period's completed agent calls, or `[costs] agent_minutes_per_call` when there were none (agent_minutes_measured says which)."),
    ("agent_minutes_spent", "The agents' talk minutes on the period's calls."),
    ("agent_minutes_saved", "contained x agent minutes per call."),
    ("cost_without_bot", "handled x agent minutes per call x agent cost per minute: every call an agent's."),
    ("cost_with_bot", "agent minutes spent x agent cost per minute + infrastructure per month prorated to the period."),
    ("cost_per_call_without_bot", "cost without the bot / handled."),
    ("cost_per_call_with_bot", "cost with the bot / handled."),
    ("savings", "cost without the bot - cost with the bot."),
    ("savings_per_month", "savings scaled from the period's days to a month (30.4375 days)."),
    ("payback_months", "initial investment / savings per month; none while the bot saves nothing."),
];

/// The costs a company configures (`[costs]` in ivr.toml), in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Costs {
    pub currency: String,
    /// What an agent's minute costs (wage, seat, overhead).
    pub agent_cost_per_minute: f64,
    /// The bot's servers, power and support per month.
    pub infrastructure_per_month: f64,
    /// Setting it up: hardware, integration, knowledge writing.
    pub initial_investment: f64,
    /// An agent's minutes per call, used when the period has no completed agent call to measure.
    pub agent_minutes_per_call: f64,
}

impl Default for Costs {
    fn default() -> Self {
        Self { currency: "EUR".into(), agent_cost_per_minute: 0.75, infrastructure_per_month: 400.0, initial_investment: 15_000.0, agent_minutes_per_call: 5.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Roi {
    pub currency: String,
    pub period_days: f64,
    pub calls: usize,
    pub handled: usize,
    pub contained: usize,
    pub transferred: usize,
    /// Measured (mean talk time of completed agent calls) or configured.
    pub agent_minutes_per_call: f64,
    pub agent_minutes_measured: bool,
    /// Agents' talk minutes in the period (completed and passed-on agent calls).
    pub agent_minutes_spent: f64,
    /// contained x agent minutes per call.
    pub agent_minutes_saved: f64,
    pub cost_without_bot: f64,
    pub cost_with_bot: f64,
    pub cost_per_call_without_bot: Option<f64>,
    pub cost_per_call_with_bot: Option<f64>,
    pub savings: f64,
    pub savings_per_month: f64,
    pub initial_investment: f64,
    /// Months until the savings repay the initial investment; none while there are no savings.
    pub payback_months: Option<f64>,
}

/// The ROI of the period `kpis` was computed for, from the same records.
pub fn compute(data: &Dataset, kpis: &Kpis, costs: &Costs) -> Roi {
    // The period's calls (the dataset also holds the next day's, for the repeat-call rule).
    let ids: std::collections::HashSet<&str> =
        data.calls.iter().filter(|c| crate::at(&c.call.started_at).is_some_and(|t| kpis.period.contains(t))).map(|c| c.call.id.as_str()).collect();
    let talk: Vec<f64> = data
        .queue
        .iter()
        .filter(|l| l.call_id.as_deref().is_some_and(|c| ids.contains(c)))
        .filter(|l| l.event == "complete" || l.event == "transfer")
        .filter_map(|l| l.detail.as_ref()?["talk_secs"].as_f64())
        .collect();
    let agent_minutes_spent = talk.iter().fold(0.0, |a, b| a + b) / 60.0;
    let completed = data.queue.iter().filter(|l| l.event == "complete" && l.call_id.as_deref().is_some_and(|c| ids.contains(c))).count();
    let measured = completed > 0;
    let per_call = if measured { agent_minutes_spent / completed as f64 } else { costs.agent_minutes_per_call };
    let days = kpis.period.days();
    let handled = kpis.handled;
    let cost_without_bot = handled as f64 * per_call * costs.agent_cost_per_minute;
    let cost_with_bot = agent_minutes_spent * costs.agent_cost_per_minute + costs.infrastructure_per_month * days / MONTH_DAYS;
    let savings = cost_without_bot - cost_with_bot;
    let savings_per_month = if days > 0.0 { savings * MONTH_DAYS / days } else { 0.0 };
    let per = |cost: f64| (handled > 0).then(|| cost / handled as f64);
    Roi {
        currency: costs.currency.clone(),
        period_days: days,
        calls: kpis.calls,
        handled,
        contained: kpis.contained,
        transferred: kpis.transferred,
        agent_minutes_per_call: per_call,
        agent_minutes_measured: measured,
        agent_minutes_spent,
        agent_minutes_saved: kpis.contained as f64 * per_call,
        cost_without_bot,
        cost_with_bot,
        cost_per_call_without_bot: per(cost_without_bot),
        cost_per_call_with_bot: per(cost_with_bot),
        savings,
        savings_per_month,
        initial_investment: costs.initial_investment,
        payback_months: (savings_per_month > 0.0).then(|| costs.initial_investment / savings_per_month),
    }
}
