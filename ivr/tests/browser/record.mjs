// Records what a page receives on a WebRTC stream (Web Audio taps the remote stream at 48 kHz
// in the page) and writes it as a 16-bit mono WAV: the tests transcribe it with the project's STT.
import { writeFileSync } from "node:fs";

/// Starts recording the stream `window[holder].remoteStream` of `page`.
export async function startRecording(page, holder) {
  await page.evaluate((holder) => {
    const ctx = new AudioContext({ sampleRate: 48000 });
    const source = ctx.createMediaStreamSource(window[holder].remoteStream);
    const tap = ctx.createScriptProcessor(4096, 1, 1);
    window.recorded = [];
    tap.onaudioprocess = (e) => window.recorded.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(tap);
    tap.connect(ctx.destination);
  }, holder);
}

/// Writes what was recorded to `path`; returns its length in seconds.
export async function saveRecording(page, path) {
  const samples = await page.evaluate(() => {
    const all = window.recorded.flatMap((b) => Array.from(b));
    return all.map((s) => Math.max(-32768, Math.min(32767, Math.round(s * 32767))));
  });
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => data.writeInt16LE(s, i * 2));
  const header = Buffer.alloc(44);
  header.write("RIFF", 0); header.writeUInt32LE(36 + data.length, 4); header.write("WAVE", 8);
  header.write("fmt ", 12); header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22);
  header.writeUInt32LE(48000, 24); header.writeUInt32LE(96000, 28); header.writeUInt16LE(2, 32); header.writeUInt16LE(16, 34);
  header.write("data", 36); header.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([header, data]));
  return samples.length / 48000;
}
