// An agent who takes calls in the browser: headless Chromium signs in to the console, sets the
// device to "this browser", waits for a call to ring there, answers it (a fake microphone playing
// MIC_WAV once), records what the console receives (Web Audio on the remote stream, 48 kHz WAV),
// hears the summary for SUMMARY_MS, accepts, and stays on the call until the caller hangs up (or
// LISTEN_MS). Prints what the page showed as one JSON line.
// Environment: CONSOLE_URL, AGENT, PASSWORD, MIC_WAV, SUMMARY_MS, LISTEN_MS, OUT_WAV, SCREENSHOT.
import { launchWithMic } from "./chromium.mjs";
import { startRecording, saveRecording } from "./record.mjs";

const browser = await launchWithMic(process.env.MIC_WAV);
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(process.env.CONSOLE_URL);
  await page.fill("#name", process.env.AGENT);
  await page.fill("#password", process.env.PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForSelector("#desk:not(.hidden)", { timeout: 10000 });
  await page.selectOption("#device", "browser");
  await page.waitForFunction(() => fetch("/agent/api/me").then((r) => r.json()).then((m) => m.device === "browser"), null, { timeout: 5000 });
  // The call rings in the console.
  await page.waitForSelector("#answer-here:not(.hidden)", { timeout: 90000 });
  out.offered = await page.textContent("#offered");
  const rang = Date.now();
  await page.click("#answer-here");
  await page.waitForFunction(() => window.agentCall.remoteStream !== null, null, { timeout: 15000 });
  await startRecording(page, "agentCall");
  await page.waitForFunction(() => window.agentCall.state === "connected", null, { timeout: 15000 });
  out.answered_after_ms = Date.now() - rang;
  await page.waitForSelector("#accept:not([disabled])", { timeout: 15000 });
  await page.waitForTimeout(Number(process.env.SUMMARY_MS || "9000"));
  await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, "-ringing.png"), fullPage: true });
  await page.click("#accept");
  await page.waitForFunction(() => document.getElementById("offered-title").textContent === "On a call", null, { timeout: 10000 });
  out.on_call = await page.textContent("#my-state");
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  // Until the caller hangs up (the server ends the agent's audio) or the time is up.
  await page.waitForFunction(() => window.agentCall.state === "ended", null, { timeout: Number(process.env.LISTEN_MS || "60000") }).catch(() => { out.still_on_call = true; });
  out.audio_state = await page.textContent("#audio-state");
  out.recorded_secs = await saveRecording(page, process.env.OUT_WAV, process.env.OUT_STEREO);
} catch (e) {
  out.failure = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
