// Debian's Chromium for the browser-call tests (through playwright-core): a fake microphone that
// plays a WAV (once, or looped for `loop`), the permission prompt answered, WebRTC allowed on
// loopback (the tests run with only `lo` up) and audio allowed to play without a click.
import { chromium } from "playwright-core";

export async function launchWithMic(micWav, { loop = false } = {}) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${micWav}${loop ? "" : "%noloop"}`,
      "--allow-loopback-in-peer-connection",
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
}
