// Records what a page receives on a WebRTC stream and what its microphone sends, in the page,
// on one Web Audio clock (48 kHz): the remote stream is written as a mono WAV (the tests
// transcribe it with the project's STT), and both as a stereo WAV (left: the microphone as sent,
// right: what was heard), whose common time line gives the voice-to-voice latency the caller
// experiences, the browser's jitter buffer and playout included.
import { writeFileSync } from "node:fs";

/// Starts recording `window[holder].remoteStream` (and `.localStream`, when there is one);
/// returns the wall-clock time (ms since 1970) of the recording's first sample, about.
export async function startRecording(page, holder) {
  return await page.evaluate((holder) => {
    const ctx = new AudioContext({ sampleRate: 48000 });
    const merge = ctx.createChannelMerger(2);
    ctx.createMediaStreamSource(window[holder].remoteStream).connect(merge, 0, 1);
    if (window[holder].localStream) ctx.createMediaStreamSource(window[holder].localStream).connect(merge, 0, 0);
    const tap = ctx.createScriptProcessor(4096, 2, 2);
    window.recorded = { mic: [], heard: [] };
    tap.onaudioprocess = (e) => {
      window.recorded.mic.push(new Float32Array(e.inputBuffer.getChannelData(0)));
      window.recorded.heard.push(new Float32Array(e.inputBuffer.getChannelData(1)));
    };
    merge.connect(tap);
    tap.connect(ctx.destination);
    return Date.now();
  }, holder);
}

function wav(channels) {
  const n = channels[0].length, k = channels.length;
  const data = Buffer.alloc(n * 2 * k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) data.writeInt16LE(channels[c][i], (i * k + c) * 2);
  }
  const header = Buffer.alloc(44);
  header.write("RIFF", 0); header.writeUInt32LE(36 + data.length, 4); header.write("WAVE", 8);
  header.write("fmt ", 12); header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(k, 22);
  header.writeUInt32LE(48000, 24); header.writeUInt32LE(48000 * 2 * k, 28); header.writeUInt16LE(2 * k, 32); header.writeUInt16LE(16, 34);
  header.write("data", 36); header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/// Writes what was heard to `path` (mono) and, when `stereo` is given, the microphone and what
/// was heard there; returns the length in seconds.
export async function saveRecording(page, path, stereo) {
  // Moved out of the page as base64 of 16-bit samples (a JSON array of numbers is slow).
  const [mic, heard] = await page.evaluate(() => {
    const encode = (blocks) => {
      const n = blocks.reduce((k, b) => k + b.length, 0);
      const pcm = new Int16Array(n);
      let i = 0;
      for (const b of blocks) for (const s of b) pcm[i++] = Math.max(-32768, Math.min(32767, Math.round(s * 32767)));
      const bytes = new Uint8Array(pcm.buffer);
      let text = "";
      for (let k = 0; k < bytes.length; k += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(k, k + 0x8000));
      return btoa(text);
    };
    return [encode(window.recorded.mic), encode(window.recorded.heard)];
  });
  const samples = (b64) => {
    const buf = Buffer.from(b64, "base64");
    return new Int16Array(buf.buffer, buf.byteOffset, buf.length / 2);
  };
  const [m, h] = [samples(mic), samples(heard)];
  writeFileSync(path, wav([h]));
  if (stereo) writeFileSync(stereo, wav([m, h]));
  return h.length / 48000;
}
