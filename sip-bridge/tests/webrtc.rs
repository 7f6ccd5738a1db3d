//! A browser call in memory: a str0m peer in the browser's role (it offers audio and the
//! "control" data channel, as the caller page does) against the server's `BrowserSession`, with
//! the datagrams carried between them by the test on a simulated clock. What a real browser does
//! on the wire is covered by the Chromium tests in `ivr/tests/browser_calls.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_audio::{FRAME, FRAME_SAMPLES, RATE};
use sip_bridge::rtp::media::MediaConfig;
use sip_bridge::webrtc::{BrowserAudio, BrowserCodec, BrowserEvent, BrowserSession, OfferError, WebRtcConfig};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const SERVER: &str = "127.0.0.1:40000";
const BROWSER: &str = "127.0.0.1:50000";

fn tone(frame: usize, hz: f32) -> [f32; FRAME_SAMPLES] {
    let mut out = [0.0f32; FRAME_SAMPLES];
    for (i, o) in out.iter_mut().enumerate() {
        let t = (frame * FRAME_SAMPLES + i) as f32 / RATE as f32;
        *o = 0.3 * (2.0 * std::f32::consts::PI * hz * t).sin();
    }
    out
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// The browser's side: a full (not lite) ICE agent that offers.
struct Browser {
    rtc: Rtc,
    channel: Option<str0m::channel::ChannelId>,
    mid: str0m::media::Mid,
    received: Vec<(u16, u32, Vec<u8>)>,
    messages: Vec<String>,
    connected: bool,
}

impl Browser {
    fn offer(epoch: Instant, codecs: &str) -> (Self, String, str0m::change::SdpPendingOffer) {
        let mut b = Rtc::builder().clear_codecs();
        if codecs.contains("opus") {
            b = b.enable_opus(true);
        }
        if codecs.contains("pcmu") {
            b = b.enable_pcmu(true);
        }
        let mut rtc = b.build(epoch);
        rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel("control".into());
        let (offer, pending) = api.apply().unwrap();
        (Self { rtc, channel: None, mid, received: Vec::new(), messages: Vec::new(), connected: false }, offer.to_sdp_string(), pending)
    }

    fn drive(&mut self, to_server: &mut Vec<Vec<u8>>) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(_) => return,
                Output::Transmit(t) => {
                    assert_eq!(t.destination, SERVER.parse::<SocketAddr>().unwrap());
                    to_server.push(t.contents.to_vec());
                }
                Output::Event(e) => match e {
                    Event::Connected => self.connected = true,
                    Event::ChannelOpen(id, _) => self.channel = Some(id),
                    Event::ChannelData(d) => self.messages.push(String::from_utf8(d.data).unwrap()),
                    Event::MediaData(d) => self.received.push((**d.seq_range.start() as u16, d.time.numer() as u32, d.data)),
                    _ => {}
                },
            }
        }
    }
}

/// Runs both sides for `frames` 20 ms frames from call time `from`; each frame the browser sends
/// `browser_says(i)` (when Some) and the server sends `server_says(i)`; returns what the server
/// heard (16 kHz).
#[allow(clippy::too_many_arguments)]
fn run(
    epoch: Instant,
    from: usize,
    frames: usize,
    browser: &mut Browser,
    browser_enc: &mut BrowserAudio,
    server: &mut BrowserSession,
    events: &mut Vec<BrowserEvent>,
    browser_says: &dyn Fn(usize) -> Option<[f32; FRAME_SAMPLES]>,
    server_says: &dyn Fn(usize) -> [f32; FRAME_SAMPLES],
) -> Vec<f32> {
    let (server_addr, browser_addr): (SocketAddr, SocketAddr) = (SERVER.parse().unwrap(), BROWSER.parse().unwrap());
    let mut heard = Vec::new();
    for i in from..from + frames {
        let now = FRAME * i as u32;
        browser.rtc.handle_input(Input::Timeout(epoch + now)).unwrap();
        server.on_tick(now);
        if let (Some(frame), true) = (browser_says(i), browser.connected) {
            let pt = browser.rtc.writer(browser.mid).unwrap().payload_params().next().unwrap().pt();
            let payload = browser_enc.encode(&frame);
            let time = str0m::media::MediaTime::new(i as u64 * browser_enc.codec().ticks_per_frame() as u64, str0m::media::Frequency::new(browser_enc.codec().rate()).unwrap());
            browser.rtc.writer(browser.mid).unwrap().write(pt, epoch + now, time, payload).unwrap();
        }
        server.send_frame(&server_says(i), true, now);
        // Carry datagrams both ways until both are quiet.
        for _ in 0..10 {
            let mut to_server = Vec::new();
            browser.drive(&mut to_server);
            for d in &to_server {
                server.on_datagram(d, browser_addr, now);
            }
            let mut to_browser = Vec::new();
            while let Some((to, bytes)) = server.poll_transmit() {
                assert_eq!(to, browser_addr, "the server answers where the browser's packets came from");
                to_browser.push(bytes);
            }
            for d in &to_browser {
                let input = Input::Receive(epoch + now, Receive { proto: Protocol::Udp, source: server_addr, destination: browser_addr, contents: d.as_slice().try_into().unwrap() });
                browser.rtc.handle_input(input).unwrap();
            }
            if to_server.is_empty() && to_browser.is_empty() {
                break;
            }
        }
        while let Some(e) = server.poll_event() {
            events.push(e);
        }
        let mut out = [0.0f32; FRAME_SAMPLES];
        server.next_frame(&mut out);
        heard.extend_from_slice(&out);
    }
    heard
}

fn connect(codecs: &str) -> (Instant, Browser, BrowserSession, String) {
    let epoch = Instant::now();
    let (mut browser, offer, pending) = Browser::offer(epoch, codecs);
    assert!(offer.contains("a=setup:actpass"));
    let (server, answer) = BrowserSession::accept(&offer, &WebRtcConfig::default(), SERVER.parse().unwrap(), epoch, Duration::ZERO).unwrap();
    browser.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    (epoch, browser, server, answer)
}

/// The whole call: the answer is ICE-lite and DTLS-active; the browser connects; a tone goes each
/// way at its level; a key and a caption cross the data channel; the page's hang-up ends it.
#[test]
fn a_browser_call_connects_carries_audio_keys_and_captions() {
    let (epoch, mut browser, mut server, answer) = connect("opus pcmu");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=setup:active"), "answer to an actpass offer: {answer}");
    assert!(answer.contains("opus/48000"), "{answer}");
    assert!(answer.contains("a=candidate:") && answer.contains("127.0.0.1 40000"), "{answer}");
    let mut enc = BrowserAudio::new(BrowserCodec::Opus, &MediaConfig::default()).unwrap();
    let mut events = Vec::new();
    server.send_message(r#"{"type":"caption","who":"bot","text":"Hello"}"#.into(), Duration::ZERO);
    let heard = run(epoch, 0, 400, &mut browser, &mut enc, &mut server, &mut events, &|i| Some(tone(i, 300.0)), &|i| tone(i, 700.0));
    assert_eq!(events.first(), Some(&BrowserEvent::Connected), "{events:?}");
    assert!(browser.connected && browser.channel.is_some());
    // The server heard the browser's tone at about its level, once the jitter buffer filled.
    let level = rms(&heard[heard.len() - FRAME_SAMPLES * 50..]);
    assert!((0.15..0.3).contains(&level), "server heard level {level}");
    // The browser got Opus packets that decode to the server's tone.
    assert!(browser.received.len() > 100, "browser got {} packets", browser.received.len());
    let mut dec = BrowserAudio::new(BrowserCodec::Opus, &MediaConfig::default()).unwrap();
    let mut out_heard = Vec::new();
    for (i, (seq, ts, payload)) in browser.received.iter().enumerate() {
        dec.push(*seq, *ts, payload.clone(), FRAME * i as u32);
        let mut f = [0.0f32; FRAME_SAMPLES];
        dec.next_frame(&mut f);
        out_heard.extend_from_slice(&f);
    }
    let level = rms(&out_heard[out_heard.len() - FRAME_SAMPLES * 50..]);
    assert!((0.15..0.3).contains(&level), "browser heard level {level}");
    // The caption queued before the channel opened arrived.
    assert_eq!(browser.messages, vec![r#"{"type":"caption","who":"bot","text":"Hello"}"#.to_string()]);
    // A key, then junk (counted, ignored), then the hang-up.
    let ch = browser.channel.unwrap();
    for m in [r#"{"type":"key","key":"7"}"#, r#"{"type":"key","key":"77"}"#, "not json", r#"{"type":"hangup"}"#] {
        browser.rtc.channel(ch).unwrap().write(false, m.as_bytes()).unwrap();
    }
    events.clear();
    run(epoch, 400, 10, &mut browser, &mut enc, &mut server, &mut events, &|_| None, &|_| [0.0; FRAME_SAMPLES]);
    assert_eq!(events, vec![BrowserEvent::Key('7'), BrowserEvent::Closed("the caller hung up")]);
    assert_eq!(server.stats().bad_messages, 2);
    assert!(server.stats().packets_in >= 390, "{:?}", server.stats());
    assert_eq!(server.stats().codec, Some(BrowserCodec::Opus));
}

/// A browser (or gateway) without Opus gets PCMU.
#[test]
fn pcmu_is_the_fallback() {
    let (epoch, mut browser, mut server, answer) = connect("pcmu");
    assert!(answer.contains("PCMU/8000") && !answer.contains("opus"), "{answer}");
    let mut enc = BrowserAudio::new(BrowserCodec::Pcmu, &MediaConfig::default()).unwrap();
    let mut events = Vec::new();
    let heard = run(epoch, 0, 100, &mut browser, &mut enc, &mut server, &mut events, &|i| Some(tone(i, 300.0)), &|i| tone(i, 700.0));
    assert_eq!(server.stats().codec, Some(BrowserCodec::Pcmu));
    let level = rms(&heard[heard.len() - FRAME_SAMPLES * 30..]);
    assert!((0.15..0.3).contains(&level), "server heard level {level}");
    assert!(browser.received.iter().all(|(_, _, p)| p.len() == 160));
}

/// A browser that takes the answer but never connects: the session closes itself.
#[test]
fn a_session_nobody_connects_to_is_closed() {
    let epoch = Instant::now();
    let (_browser, offer, _pending) = Browser::offer(epoch, "opus");
    let cfg = WebRtcConfig { connect_timeout_secs: 5, ..Default::default() };
    let (mut server, _) = BrowserSession::accept(&offer, &cfg, SERVER.parse().unwrap(), epoch, Duration::ZERO).unwrap();
    server.on_tick(Duration::from_secs(4));
    assert!(server.poll_event().is_none());
    server.on_tick(Duration::from_secs(5));
    assert_eq!(server.poll_event(), Some(BrowserEvent::Closed("the browser never connected")));
}

/// Offers that cannot make a call are refused with a reason.
#[test]
fn bad_offers_are_refused_with_a_reason() {
    let epoch = Instant::now();
    let accept = |sdp: &str| BrowserSession::accept(sdp, &WebRtcConfig::default(), SERVER.parse().unwrap(), epoch, Duration::ZERO).map(|_| ());
    assert!(matches!(accept("hello"), Err(OfferError::NoAudio)));
    assert!(matches!(accept("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nbroken"), Err(OfferError::Sdp(_))));
    let (_b, offer, _p) = Browser::offer(epoch, "opus");
    // An audio m-line whose only codec is one we do not speak.
    let no_codec = offer.replace("opus/48000/2", "G729/8000");
    let r = accept(&no_codec);
    assert!(matches!(r, Err(OfferError::NoCodec)), "{r:?}");
    // Random bytes never panic.
    for n in 0..200u32 {
        let junk: String = (0..(n % 97)).map(|i| char::from(b"v=0\r\nm=audio a:c= 1\n"[((i * 7 + n) % 20) as usize])).collect();
        let _ = accept(&format!("m=audio{junk}"));
    }
}

/// A connected browser whose media stops (the tab closed without a word) is gone.
#[test]
fn a_browser_whose_media_stops_is_gone() {
    let (epoch, mut browser, mut server, _) = connect("opus");
    let mut enc = BrowserAudio::new(BrowserCodec::Opus, &MediaConfig::default()).unwrap();
    let mut events = Vec::new();
    run(epoch, 0, 100, &mut browser, &mut enc, &mut server, &mut events, &|i| Some(tone(i, 300.0)), &|i| tone(i, 700.0));
    assert_eq!(events, vec![BrowserEvent::Connected]);
    // The browser sends nothing more (and answers nothing): 8 s later the session is closed.
    events.clear();
    for s in 3..=11u64 {
        server.on_tick(Duration::from_secs(s));
        events.extend(std::iter::from_fn(|| server.poll_event()));
    }
    assert_eq!(events, vec![BrowserEvent::Closed("the browser's media stopped")]);
}

/// The browser's audio reaches the server's frames with little delay: a tone that starts at
/// frame 100 is heard within a few frames (the jitter buffer's least delay and the codec's).
#[test]
fn the_browsers_audio_is_heard_within_a_few_frames() {
    let (epoch, mut browser, mut server, _) = connect("opus");
    let mut enc = BrowserAudio::new(BrowserCodec::Opus, &MediaConfig::default()).unwrap();
    let mut events = Vec::new();
    let heard = run(epoch, 0, 200, &mut browser, &mut enc, &mut server, &mut events, &|i| Some(if i >= 100 { tone(i, 300.0) } else { [0.0; FRAME_SAMPLES] }), &|_| [0.0; FRAME_SAMPLES]);
    let first = heard.chunks(FRAME_SAMPLES).position(|f| rms(f) > 0.05).expect("the tone is heard");
    eprintln!("tone sent from frame 100, heard from frame {first}");
    assert!(first <= 100 + 4, "heard from frame {first}");
}

/// Behind a 1:1 NAT the configured public address is the candidate (ICE-lite offers host
/// candidates only), on the socket's port.
#[test]
fn the_public_address_is_offered_behind_a_nat() {
    let epoch = Instant::now();
    let (_b, offer, _p) = Browser::offer(epoch, "opus");
    let cfg = WebRtcConfig { public_ip: Some("203.0.113.7".parse().unwrap()), ..Default::default() };
    let (_, answer) = BrowserSession::accept(&offer, &cfg, SERVER.parse().unwrap(), epoch, Duration::ZERO).unwrap();
    let candidates: Vec<&str> = answer.lines().filter(|l| l.starts_with("a=candidate:")).collect();
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    assert!(candidates[0].contains("203.0.113.7 40000 typ host"), "{candidates:?}");
}
