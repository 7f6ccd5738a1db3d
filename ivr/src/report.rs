//! `ivr report kpi|roi|gaps|topics [--from DATE] [--to DATE] [--json]`: what the records say
//! (ivr-insight over the store), for a supervisor at a terminal and for scripts.
//!
//! A DATE is a day (`2026-12-01`, in the company's time zone from `hours.toml`; `--to` includes
//! that day) or an RFC 3339 time. The default period is the 30 days up to now.

use std::process::ExitCode;

use anyhow::Context;
use ivr_insight::{gaps, kpi, roi, table, Dataset, Period};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::config::Config;

#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Every KPI with its definition: containment, first response, queue speed of answer and
    /// service levels, handling time, transfers and reasons, abandonment, follow-ups, intents,
    /// CSAT, sentiment; by hour, day and queue.
    Kpi(PeriodArgs),
    /// Calls, contained calls, agent minutes saved, cost per call with and without the bot, and
    /// the payback period, from `[costs]` in the config.
    Roi(PeriodArgs),
    /// Caller questions the bot could not answer, grouped by meaning, largest first.
    Gaps(PeriodArgs),
    /// Topics callers raised more this week than the week before.
    Topics {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct PeriodArgs {
    /// First day (or time) of the period; default: 30 days before --to.
    #[arg(long)]
    from: Option<String>,
    /// Last day of the period (included), or the time it ends; default: now.
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    json: bool,
    /// A table for spreadsheets: one figure per row (`figure,value,definition`); for the gaps one
    /// question per row with its topic.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
}

/// The company's time zone (`hours.toml` of the tenant), UTC when it has none.
pub(crate) fn company_timezone(cfg: &Config) -> TimeZone {
    crate::load::tenant_dir(cfg)
        .ok()
        .and_then(|dir| dialogue::tools::Hours::load(&dir.join("hours.toml")).ok())
        .and_then(|h| TimeZone::get(&h.timezone).ok())
        .unwrap_or(TimeZone::UTC)
}

pub(crate) fn period(from: Option<&str>, to: Option<&str>, tz: &TimeZone) -> anyhow::Result<Period> {
    Ok(Period::parse(from, to, tz, Timestamp::now())?)
}

pub(crate) fn settings(cfg: &Config) -> kpi::Settings {
    kpi::Settings { service_level_secs: cfg.insight.service_level_secs, timezone: company_timezone(cfg) }
}

pub fn run(cfg: &Config, command: ReportCommand) -> anyhow::Result<ExitCode> {
    let settings = settings(cfg);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = runtime.block_on(ivr_store::Store::open(&cfg.records.url)).with_context(|| format!("cannot open the store {}", cfg.records.url))?;
    let load = |p: Period| -> anyhow::Result<Dataset> { Ok(runtime.block_on(Dataset::load(&store, p))?) };
    let result = match command {
        ReportCommand::Kpi(a) => {
            let p = period(a.from.as_deref(), a.to.as_deref(), &settings.timezone)?;
            let k = kpi::compute(&load(p)?, p, &settings);
            if a.csv {
                print_csv(&table::figures(&k, kpi::DEFINITIONS)?)?;
            } else if a.json {
                println!("{}", serde_json::json!({"kpis": k, "definitions": definitions()}));
            } else {
                print_kpis(&k);
            }
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Roi(a) => {
            let p = period(a.from.as_deref(), a.to.as_deref(), &settings.timezone)?;
            let data = load(p)?;
            let r = roi::compute(&data, &kpi::compute(&data, p, &settings), &cfg.costs);
            if a.csv {
                print_csv(&table::figures(&r, roi::DEFINITIONS)?)?;
            } else if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                print_roi(&r, p);
            }
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Gaps(a) => {
            let p = period(a.from.as_deref(), a.to.as_deref(), &settings.timezone)?;
            let data = load(p)?;
            let embedder = embedder(cfg)?;
            let g = gaps::report(&data.calls, p, |texts| embedder.embed(texts))?;
            if a.csv {
                print_csv(&table::gaps(&g))?;
            } else if a.json {
                println!("{}", serde_json::to_string(&g)?);
            } else {
                println!("{} questions the bot could not answer, {} topics ({} to {})", g.unanswered, g.groups.len(), p.from, p.to);
                for g in &g.groups {
                    println!("{:>4}  {}", g.size, g.label);
                    for m in g.members.iter().filter(|m| m.text != g.label).take(3) {
                        println!("        \"{}\"", m.text);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Topics { json } => {
            let (this, last) = gaps::weeks_to(Timestamp::now());
            let data = load(Period { from: last.from, to: this.to })?;
            let embedder = embedder(cfg)?;
            let embed = |t: &str| embedder.embed_one(t).ok();
            let trends = gaps::rising(&gaps::questions(&data.calls, this), &gaps::questions(&data.calls, last), &embed);
            if json {
                println!("{}", serde_json::json!({"this_week": this, "last_week": last, "rising": trends}));
            } else {
                println!("topics rising this week against last:");
                for t in &trends {
                    println!("{:>4} (was {:>3})  {}", t.this_week, t.last_week, t.intent.as_deref().unwrap_or(&t.label));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    runtime.block_on(store.close());
    result
}

fn embedder(cfg: &Config) -> anyhow::Result<dialogue::embed::Embedder> {
    let models = crate::load::model_dir(cfg)?;
    let dir = models.data().join("embeddings/all-MiniLM-L6-v2");
    dialogue::embed::Embedder::load(&dir).with_context(|| format!("cannot load the sentence embeddings from {}", dir.display()))
}

fn print_csv(t: &table::Table) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout().lock().write_all(&t.to_csv()?)?;
    Ok(())
}

fn definitions() -> serde_json::Value {
    kpi::DEFINITIONS.iter().map(|(k, d)| (k.to_string(), serde_json::Value::from(*d))).collect::<serde_json::Map<_, _>>().into()
}

fn pct(r: Option<f64>) -> String {
    r.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "-".into())
}

fn num(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.1} {unit}")).unwrap_or_else(|| "-".into())
}

fn print_kpis(k: &kpi::Kpis) {
    println!("period            {} to {}", k.period.from, k.period.to);
    println!("calls             {} (handled {})", k.calls, k.handled);
    println!("contained         {} ({})", k.contained, pct(k.containment_rate));
    println!("transferred       {} ({})", k.transferred, pct(k.transfer_rate));
    for (reason, n) in &k.transfer_reasons {
        println!("    {reason:<22} {n}");
    }
    println!("first response    mean {}, p90 {}", num(k.first_response_secs.mean, "s"), num(k.first_response_secs.p90, "s"));
    println!("voice to voice    mean {}, p90 {}", num(k.voice_to_voice_ms.mean, "ms"), num(k.voice_to_voice_ms.p90, "ms"));
    println!("handling time     mean {}", num(k.handle_secs.mean, "s"));
    let q = &k.queue;
    println!(
        "queue             entered {}, answered {}, abandoned {} ({}), ASA {}, SL {} / SL2 {} within {} s",
        q.entered, q.answered, q.abandoned, pct(q.abandonment_rate), num(q.asa_secs.mean, "s"), pct(q.service_level), pct(q.service_level_2), k.service_level_secs
    );
    for (name, q) in &k.queues {
        println!("    {name:<22} entered {}, answered {}, abandoned {}, SL {}", q.entered, q.answered, q.abandoned, pct(q.service_level));
    }
    let f = &k.follow_ups;
    println!("follow-ups        {} callbacks, {} voicemails ({} done, {} open)", f.callbacks, f.voicemails, f.done, f.open);
    println!("CSAT              {} ratings, mean {}, CSAT {}", k.csat.ratings, num(k.csat.mean, ""), pct(k.csat.csat));
    println!("sentiment         {}", k.sentiment.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", "));
    println!("caller turns      {} understood, {} unanswered", k.understood_turns, k.unanswered_turns);
    for i in k.intents.iter().take(10) {
        println!("    {:<22} {:>5} (confidence {:.2})", i.intent, i.turns, i.mean_confidence);
    }
}

fn print_roi(r: &roi::Roi, p: Period) {
    let c = &r.currency;
    println!("period                     {} to {} ({:.1} days)", p.from, p.to, r.period_days);
    println!("calls                      {} (handled {}, contained {}, transferred {})", r.calls, r.handled, r.contained, r.transferred);
    println!("agent minutes per call     {:.2} ({})", r.agent_minutes_per_call, if r.agent_minutes_measured { "measured" } else { "configured" });
    println!("agent minutes saved        {:.1} (spent {:.1})", r.agent_minutes_saved, r.agent_minutes_spent);
    println!("cost without the bot       {:.2} {c} ({} per call)", r.cost_without_bot, num(r.cost_per_call_without_bot, c));
    println!("cost with the bot          {:.2} {c} ({} per call)", r.cost_with_bot, num(r.cost_per_call_with_bot, c));
    println!("savings                    {:.2} {c} ({:.2} {c} per month)", r.savings, r.savings_per_month);
    match r.payback_months {
        Some(m) => println!("payback                    {m:.1} months on {:.2} {c}", r.initial_investment),
        None => println!("payback                    none yet: the bot saves nothing in this period"),
    }
}
