// Debian's Firefox ESR for the browser-call tests (through puppeteer-core, WebDriver BiDi), with
// the page API the scripts use from playwright-core, so one script drives either browser.
//
// Firefox has no file-backed fake microphone (Chromium's --use-file-for-fake-audio-capture): its
// fake device plays a tone. So getUserMedia is wrapped before the page loads: the page's own call
// still goes to Firefox (the fake device, permission prompt answered by a pref), and the track it
// gets is replaced by the WAV played through Web Audio, from the moment the microphone opens, once.
// Everything else (the page's script, RTCPeerConnection, ICE, DTLS-SRTP, Opus, the data channel)
// is Firefox's own.
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const PREFS = {
  // The microphone: the fake device, no permission prompt; audio may start without a click.
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.autoplay.default": 0,
  "media.autoplay.block-webaudio": false,
  // ICE on this machine's addresses as they are (no mDNS names, every interface).
  "media.peerconnection.ice.obfuscate_host_addresses": false,
  "media.peerconnection.ice.default_address_only": false,
  "media.peerconnection.ice.loopback": true,
  // No phoning home (the tests run without a network).
  "network.manage-offline-status": false,
  "app.update.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.enabled": false,
};

/// Replaces the microphone's track with the WAV (base64) played once through Web Audio.
function micFromWav(b64) {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const device = await real(constraints);
    const ctx = new AudioContext({ sampleRate: 48000 });
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const source = ctx.createBufferSource();
    source.buffer = await ctx.decodeAudioData(bytes.buffer);
    const out = ctx.createMediaStreamDestination();
    source.connect(out);
    await ctx.resume();
    source.start();
    device.getAudioTracks().forEach((t) => t.stop());
    return out.stream;
  };
}

/// The playwright-core page calls the scripts use, on a puppeteer page.
class Page {
  constructor(page) { this.page = page; }
  on(event, f) { this.page.on(event, f); }
  goto(url) { return this.page.goto(url); }
  click(selector) { return this.page.click(selector); }
  evaluate(f, arg) { return this.page.evaluate(f, arg); }
  waitForFunction(f, arg, options = {}) { return this.page.waitForFunction(f, { timeout: options.timeout, polling: 100 }, arg); }
  waitForTimeout(ms) { return new Promise((r) => setTimeout(r, ms)); }
  textContent(selector) { return this.page.$eval(selector, (e) => e.textContent); }
  screenshot(options) { return this.page.screenshot(options); }
}

export async function launchFirefoxWithMic(micWav) {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: "/usr/bin/firefox-esr",
    headless: true,
    extraPrefsFirefox: PREFS,
  });
  const wav = readFileSync(micWav).toString("base64");
  return {
    async newPage({ viewport } = {}) {
      const page = await browser.newPage();
      if (viewport) await page.setViewport(viewport);
      await page.evaluateOnNewDocument(micFromWav, wav);
      return new Page(page);
    },
    version: () => browser.version(),
    close: () => browser.close(),
  };
}
