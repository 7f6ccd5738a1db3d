// Browser sessions that are opened and abandoned: in one headless Chromium page, OFFERED peer
// connections post their offer and never use the answer (a page closed mid-setup), and CONNECTED
// ones connect fully (ICE, DTLS, the data channel) and are then dropped with the browser, with no
// hang-up and no DELETE. Prints the HTTP statuses and connection states as one JSON line.
// Environment: BASE_URL, MIC_WAV (silence), OFFERED, CONNECTED.
import { launchWithMic } from "./chromium.mjs";

const browser = await launchWithMic(process.env.MIC_WAV, { loop: true });
const out = {};
try {
  const page = await browser.newPage();
  await page.goto(process.env.BASE_URL + "/call");
  const result = await page.evaluate(async ({ offered, connected }) => {
    window.kept = [];
    const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    async function open(connect) {
      const pc = new RTCPeerConnection();
      window.kept.push(pc);
      for (const t of mic.getTracks()) pc.addTrack(t, mic);
      pc.createDataChannel("control");
      await pc.setLocalDescription(await pc.createOffer());
      const r = await fetch("/call/sessions", { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
      const answer = await r.text();
      if (r.status !== 201 || !connect) return { status: r.status, state: pc.connectionState };
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      const until = Date.now() + 15000;
      while (pc.connectionState !== "connected" && Date.now() < until) await new Promise((ok) => setTimeout(ok, 50));
      return { status: r.status, state: pc.connectionState };
    }
    const all = [];
    for (let i = 0; i < offered; i++) all.push(open(false));
    for (let i = 0; i < connected; i++) all.push(open(true));
    return Promise.all(all);
  }, { offered: Number(process.env.OFFERED), connected: Number(process.env.CONNECTED) });
  out.statuses = result.map((r) => r.status);
  out.states = result.map((r) => r.state);
} catch (e) {
  out.failure = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
