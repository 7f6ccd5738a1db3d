// Drives the supervisors' dashboard in headless Chromium (Debian's, through playwright-core):
// signs in, shows the period, reads every key figure card, checks each chart drew on its canvas,
// finds a call by number in the call browser, opens it and plays its recording; saves screenshots
// and prints what the page showed as one JSON line.
// Environment: DASHBOARD_URL, NAME, PASSWORD, FROM, TO (days), NUMBER, SHOTS (a directory).
import { chromium } from "playwright-core";

const env = process.env;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"] });
const out = { page_errors: [], failed: [] };
const loaded = (page, before) => page.waitForFunction((b) => document.body.dataset.loaded && document.body.dataset.loaded !== b, before, { timeout: 60000 });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => out.page_errors.push(String(e)));
  page.on("response", (r) => { if (r.status() >= 400) out.failed.push(`${r.status()} ${new URL(r.url()).pathname}`); });
  await page.goto(env.DASHBOARD_URL);
  await page.waitForSelector("#login:not(.hidden)", { timeout: 10000 });
  await page.fill("#name", env.NAME);
  await page.fill("#password", env.PASSWORD);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#board:not(.hidden)", { timeout: 10000 });
  await loaded(page, undefined);
  // The batch's period.
  const first = await page.evaluate(() => document.body.dataset.loaded);
  await page.fill("#from", env.FROM);
  await page.fill("#to", env.TO);
  await page.click("#refresh");
  await loaded(page, first);
  out.period = await page.textContent("#period");
  out.cards = await page.$$eval("#cards .card", (cards) => cards.map((c) => ({ label: c.querySelector(".label").textContent, value: c.querySelector(".value").textContent, trend: (c.querySelector(".trend") || {}).textContent || null, definition: (c.querySelector(".def") || {}).textContent || "" })));
  // Each chart: drawn pixels on its canvas, and the numbers Chart.js was given.
  out.charts = await page.$$eval("canvas", (canvases) => canvases.map((c) => {
    const ctx = c.getContext("2d");
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    let drawn = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) drawn++;
    const chart = Chart.getChart(c);
    return { id: c.id, width: c.width, height: c.height, drawn, labels: chart ? chart.data.labels : null, data: chart ? chart.data.datasets.map((d) => d.data) : null };
  }));
  out.gaps = await page.textContent("#gaps");
  out.roi = await page.$$eval("#roi-rows tr", (rows) => rows.map((r) => [...r.children].map((td) => td.textContent)));
  out.live = await page.textContent("#live-summary");
  out.found_all = await page.textContent("#found");
  await page.screenshot({ path: `${env.SHOTS}/dashboard.png`, fullPage: true });

  // The call browser: by number.
  const before = await page.textContent("#found");
  await page.fill("#q-number", env.NUMBER);
  await page.click("#search button[type=submit]");
  await page.waitForFunction((b) => document.getElementById("found").textContent !== b, before, { timeout: 20000 });
  out.found = await page.textContent("#found");
  out.rows = await page.$$eval("#calls tr", (rows) => rows.map((r) => ({ call: r.dataset.call, cells: [...r.children].map((td) => td.textContent) })));
  await page.click("#calls tr.pick");
  await page.waitForSelector("#call:not(.hidden)", { timeout: 10000 });
  out.call_title = await page.textContent("#call-title");
  out.transcript = await page.$$eval("#transcript tr", (rows) => rows.map((r) => [...r.children].map((td) => td.textContent)));
  await page.click("#play");
  await page.waitForFunction(() => { const a = document.getElementById("audio"); return a.readyState >= 1 && a.duration > 0 && !a.error; }, null, { timeout: 20000 });
  // Let it play a moment: the position moves.
  await page.waitForFunction(() => document.getElementById("audio").currentTime > 0.3, null, { timeout: 10000 });
  out.audio = await page.evaluate(() => { const a = document.getElementById("audio"); return { duration: a.duration, position: a.currentTime, src: a.currentSrc }; });
  out.page_text = await page.evaluate(() => document.body.innerText);
  await page.screenshot({ path: `${env.SHOTS}/dashboard-call.png`, fullPage: true });
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
