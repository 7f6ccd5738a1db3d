// A browser caller: headless Chromium (Debian's, through playwright-core) opens the caller page,
// presses Call with a fake microphone playing MIC_WAV once, records what the page receives from
// the server (Web Audio on the remote stream, 48 kHz, written as a WAV), presses KEYS on the page's
// keypad at KEYS_AT_MS (optional), hangs up after LISTEN_MS (or waits for the server to end the
// call when HANGUP=server), saves a screenshot and prints what the page showed as one JSON line.
// BROWSER=firefox runs it in Debian's Firefox ESR instead (firefox.mjs). ICE_POLICY=relay makes
// the page's RTCPeerConnection use only TURN relays (as a browser behind a strict firewall has to).
// Environment: CALL_URL, MIC_WAV, LISTEN_MS, OUT_WAV, SCREENSHOT, [KEYS, KEYS_AT_MS, HANGUP,
// BROWSER, ICE_POLICY].
import { launchWithMic } from "./chromium.mjs";
import { launchFirefoxWithMic } from "./firefox.mjs";
import { startRecording, saveRecording } from "./record.mjs";

const listen = Number(process.env.LISTEN_MS || "20000");
const browser = process.env.BROWSER === "firefox" ? await launchFirefoxWithMic(process.env.MIC_WAV) : await launchWithMic(process.env.MIC_WAV);
const out = {};
let page;
try {
  out.browser = await browser.version();
  page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  if (process.env.ICE_POLICY) {
    await page.addInitScript((policy) => {
      const Native = window.RTCPeerConnection;
      window.RTCPeerConnection = function (config = {}) { return new Native({ ...config, iceTransportPolicy: policy }); };
      window.RTCPeerConnection.prototype = Native.prototype;
    }, process.env.ICE_POLICY);
  }
  page.on("console", (m) => { if (m.type() === "error") (out.console ||= []).push(m.text()); });
  await page.goto(process.env.CALL_URL);
  await page.click("#call");
  // Record the remote audio from the moment it arrives, with the call time of its first sample.
  await page.waitForFunction(() => window.ivrCall.remoteStream !== null || window.ivrCall.error, null, { timeout: 20000 });
  out.error_early = await page.evaluate(() => window.ivrCall.error);
  out.recording_started_ms = await startRecording(page, "ivrCall");
  await page.waitForFunction(() => window.ivrCall.state === "connected", null, { timeout: 20000 });
  out.connected_state = await page.textContent("#state");
  const started = Date.now();
  if (process.env.KEYS) {
    await page.waitForTimeout(Math.max(0, Number(process.env.KEYS_AT_MS || "0")));
    for (const k of process.env.KEYS) {
      await page.click(`#keypad button[data-key="${k}"]`);
      await page.waitForTimeout(300);
    }
  }
  if (process.env.HANGUP === "server") {
    await page.waitForFunction(() => window.ivrCall.state === "ended", null, { timeout: listen });
  } else {
    await page.waitForTimeout(Math.max(0, listen - (Date.now() - started)));
  }
  // The browser's own view of the audio it received: its jitter buffer's average delay.
  out.inbound = await page.evaluate(async () => {
    if (!window.ivrCall.pc) return null;
    const stats = await window.ivrCall.pc.getStats();
    let inbound = null;
    for (const s of stats.values()) {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        inbound = { jitter_buffer_ms: s.jitterBufferEmittedCount ? Math.round((1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount) : null, packets: s.packetsReceived, lost: s.packetsLost, jitter_ms: Math.round(1000 * (s.jitter || 0)), concealed: s.concealedSamples, codec: s.codecId };
      }
    }
    // After the jitter buffer: the average delay from decoding to the audio device's output.
    for (const s of stats.values()) {
      if (inbound && s.type === "media-playout" && s.totalSamplesCount) {
        inbound.playout_ms = Math.round((1000 * s.totalPlayoutDelay) / s.totalSamplesCount);
      }
    }
    return inbound;
  });
  // The route the call's media took: the selected candidate pair's two ends.
  out.route = await page.evaluate(async () => {
    if (!window.ivrCall.pc) return null;
    const stats = await window.ivrCall.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
        const end = (id) => { const c = stats.get(id); return c && { type: c.candidateType, address: c.address, port: c.port, protocol: c.protocol }; };
        return { local: end(s.localCandidateId), remote: end(s.remoteCandidateId) };
      }
    }
    return null;
  });
  out.captions = await page.evaluate(() => window.ivrCall.captions);
  out.events = await page.evaluate(() => window.ivrCall.events);
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  // Hang up first (the call ends when the caller is done), then save what was recorded.
  out.ended_by_server = await page.evaluate(() => window.ivrCall.state === "ended");
  if (process.env.HANGUP !== "server" && !out.ended_by_server) {
    await page.click("#hangup");
    await page.waitForFunction(() => window.ivrCall.state === "ended", null, { timeout: 5000 });
  }
  out.recorded_secs = await saveRecording(page, process.env.OUT_WAV, process.env.OUT_STEREO);
  out.state = await page.evaluate(() => window.ivrCall.state);
  out.state_text = await page.textContent("#state");
  out.error = await page.evaluate(() => window.ivrCall.error);
} catch (e) {
  out.failure = String(e);
  // Where the call was when it failed, when the page can still tell.
  out.at_failure = await page?.evaluate(() => window.ivrCall && {
    state: window.ivrCall.state, error: window.ivrCall.error,
    ice: window.ivrCall.pc?.iceConnectionState, connection: window.ivrCall.pc?.connectionState,
  }).catch(() => null);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
