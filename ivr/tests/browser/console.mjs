// Drives the agents' console in headless Chromium (Debian's, through playwright-core): signs in,
// waits for the offered call and its summary, accepts it, waits until the agent is on the call,
// saves a screenshot and prints what the page showed as one JSON line.
// Environment: CONSOLE_URL, AGENT, PASSWORD, SCREENSHOT.
import { chromium } from "playwright-core";

const url = process.env.CONSOLE_URL;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
  await page.fill("#name", process.env.AGENT);
  await page.fill("#password", process.env.PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForSelector("#desk:not(.hidden)", { timeout: 10000 });
  // The call is offered once the agent's phone has answered (the agent hears the summary).
  await page.waitForSelector("#offered:not(.hidden)", { timeout: 60000 });
  out.offered = await page.textContent("#offered");
  out.waiting = await page.textContent("#waiting");
  await page.waitForSelector("#accept:not([disabled])", { timeout: 30000 });
  await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, "-offered.png"), fullPage: true });
  await page.click("#accept");
  await page.waitForFunction(() => document.getElementById("my-state").textContent.includes("on call"), null, { timeout: 10000 });
  out.state = await page.textContent("#my-state");
  await page.waitForFunction(() => document.getElementById("offered-title").textContent === "On a call", null, { timeout: 5000 });
  out.current = await page.textContent("#offered");
  out.agents = await page.textContent("#agents");
  // Passing the call to an agent who does not exist: a clear error, and the call goes on.
  await page.fill("#pass-to", "nobody");
  await page.click("#pass-on button[type=submit]");
  await page.waitForFunction(() => document.getElementById("offered-error").textContent.includes("nobody"), null, { timeout: 5000 });
  out.transfer_error = await page.textContent("#offered-error");
  out.state_after = await page.textContent("#my-state");
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
