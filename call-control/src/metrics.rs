//! The call metrics, registered once in the process's Prometheus registry (`/metrics` exposes it
//! through `ivr-web`). Counters are the one record of what they count: `/healthz` reads them too.

use std::sync::LazyLock;

use prometheus::{register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge};
use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge};

pub struct CallMetrics {
    pub calls_started: IntCounter,
    pub calls_active: IntGauge,
    /// Finished calls by who ended them: caller, bot, rtp_timeout, shutdown.
    pub calls_ended: IntCounterVec,
    pub frames_out: IntCounter,
    /// Outbound frames sent more than 10 ms after their time.
    pub frames_late: IntCounter,
    pub phones_registered: IntGauge,
    pub barge_ins: IntCounter,
    /// Transfers by their reason (the dialogue's `TransferReason`).
    pub transfers: IntCounterVec,
    /// The queue's log by event (entered, offered, connect, abandon, ...).
    pub queue_events: IntCounterVec,
    /// Seconds per stage of a caller's turn: endpoint_wait (last speech to the turn's end), stt
    /// (the end to the final transcript), understand, llm_first_token, tts_first_audio (from the
    /// end of the turn), voice_to_voice (last speech to the first reply frame on the wire).
    pub turn_stage: HistogramVec,
    /// Seconds of a call's 20 ms tick: `wake` (how late the call's thread woke after the tick was
    /// due: the machine's scheduling), `work` (from waking to the end of the tick's work: this
    /// call's own cost). Late frames with a small `work` are the scheduler's, not the call's.
    pub tick: HistogramVec,
    /// Browser offers by result: answered, refused (a bad offer), unavailable (stopping, no socket).
    pub browser_offers: IntCounterVec,
    /// Browser sessions by how they ended: connected (ICE and DTLS came up) is counted when they
    /// do; the rest when they end (hung up, never connected, went away, ...).
    pub browser_sessions: IntCounterVec,
    /// Seconds from a browser's offer to its media connecting (ICE and DTLS).
    pub browser_connect: prometheus::Histogram,
}

/// Buckets from 0.1 ms to 100 ms: a tick's parts.
const TICK_BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];

/// Buckets from 10 ms to 5 s: the stages of one turn live there.
const STAGE_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0];

static METRICS: LazyLock<CallMetrics> = LazyLock::new(|| {
    // Registration fails only for a duplicate name, which is a programming error caught by tests.
    let m = || -> prometheus::Result<CallMetrics> {
        Ok(CallMetrics {
            calls_started: register_int_counter!("ivr_calls_started_total", "Calls answered")?,
            calls_active: register_int_gauge!("ivr_calls_active", "Calls in progress")?,
            calls_ended: register_int_counter_vec!("ivr_calls_ended_total", "Finished calls by who ended them", &["ended_by"])?,
            frames_out: register_int_counter!("ivr_frames_out_total", "Outbound audio frames sent")?,
            frames_late: register_int_counter!("ivr_frames_late_total", "Outbound audio frames sent more than 10 ms late")?,
            phones_registered: register_int_gauge!("ivr_phones_registered", "Agents' phones registered now")?,
            barge_ins: register_int_counter!("ivr_barge_ins_total", "Times a caller's speech stopped the bot")?,
            transfers: register_int_counter_vec!("ivr_transfers_total", "Transfers to a person by reason", &["reason"])?,
            queue_events: register_int_counter_vec!("ivr_queue_events_total", "Queue log events by kind", &["event"])?,
            turn_stage: register_histogram_vec!("ivr_turn_stage_seconds", "Time per stage of a caller's turn", &["stage"], STAGE_BUCKETS.to_vec())?,
            tick: register_histogram_vec!("ivr_tick_seconds", "A call's 20 ms tick: late wake-up and own work", &["part"], TICK_BUCKETS.to_vec())?,
            browser_offers: register_int_counter_vec!("ivr_browser_offers_total", "Browser (WebRTC) offers by result", &["result"])?,
            browser_sessions: register_int_counter_vec!("ivr_browser_sessions_total", "Browser sessions: connected, and how they ended", &["event"])?,
            browser_connect: prometheus::register_histogram!("ivr_browser_connect_seconds", "From a browser's offer to its media connecting", STAGE_BUCKETS.to_vec())?,
        })
    };
    m().expect("call metrics register once")
});

pub fn metrics() -> &'static CallMetrics {
    &METRICS
}

/// Records one finished turn's stages (see `record::stages_of`).
pub fn observe_turn(s: &ivr_store::Stages) {
    let m = metrics();
    for (name, ms) in [
        ("endpoint_wait", s.endpoint_ms),
        ("stt", s.stt_ms),
        ("understand", s.understand_ms),
        ("llm_first_token", s.llm_first_token_ms),
        ("tts_first_audio", s.tts_first_audio_ms),
        ("voice_to_voice", s.voice_to_voice_ms),
    ] {
        if let Some(ms) = ms {
            m.turn_stage.with_label_values(&[name]).observe(ms / 1000.0);
        }
    }
}
