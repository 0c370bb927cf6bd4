// WebSocket and EventSource through bffgate serve in headless Chromium
// (issue #16 item 2). Run by streams_test.go, which starts the stack: the
// test OP, bffgate serve with a WebSocket echo and an event stream behind
// /api/, and an attacker's page on another origin of the same site.
//
// Steps:
//   1. log in at the provider;
//   2. a WebSocket to /api/ws opens and echoes; an EventSource on
//      /api/events receives events;
//   3. a page of another origin (same site, so the browser sends the
//      victim's SameSite=Lax cookie) opens a WebSocket to /api/ws: it
//      never opens (the BFF answers 403; the Go test checks that);
//   4. logout (POST /logout with the CSRF header) closes the open socket,
//      and the event stream ends (it retries, gets 401, and is closed).
//
// Env: BFFGATE_URL, BFFGATE_EVIL_URL (required), BFFGATE_ARTIFACTS,
// BFFGATE_CHROMIUM. Output: "STEP …" lines, "OK" at the end; exit 1 with
// "FAIL: <why>" on stderr and streams-failure.png in the artifacts dir.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const STEP_TIMEOUT = 15_000;
const RUN_TIMEOUT = 90_000;
const baseURL = (process.env.BFFGATE_URL ?? '').replace(/\/+$/, '');
const evilURL = (process.env.BFFGATE_EVIL_URL ?? '').replace(/\/+$/, '');
const artifacts = path.resolve(process.env.BFFGATE_ARTIFACTS || path.join(here, '..', 'artifacts'));
const executablePath = process.env.BFFGATE_CHROMIUM || '/usr/bin/chromium';

class Failure extends Error {}
function check(ok, msg) {
  if (!ok) throw new Failure(msg);
}
function die(msg) {
  process.stderr.write(`FAIL: ${msg}\n`);
  process.exit(1);
}
for (const [name, u] of [['BFFGATE_URL', baseURL], ['BFFGATE_EVIL_URL', evilURL]]) {
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(u)) die(`${name} must be http://127.0.0.1:<port>, got ${JSON.stringify(u)}`);
}
fs.mkdirSync(artifacts, { recursive: true });
const wsURL = baseURL.replace(/^http/, 'ws') + '/api/ws';

const started = Date.now();
let lastStep = 'launch';
function step(name) {
  lastStep = name;
  process.stdout.write(`STEP ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s ${name}\n`);
}

async function login(page) {
  await page.goto(`${baseURL}/login?returnTo=%2F`);
  const form = page.locator('input[name="login"]');
  const allow = page.getByRole('button', { name: 'Allow' });
  const app = page.locator('#app');
  await form.or(allow).or(app).first().waitFor({ state: 'visible' });
  if (await form.isVisible()) {
    await form.fill('alice');
    await page.locator('input[name="password"]').fill('alice-password');
    await page.locator('form button[type="submit"]').first().click();
    await allow.or(app).first().waitFor({ state: 'visible' });
  }
  if (await allow.isVisible()) await allow.click();
  await app.waitFor({ state: 'visible' });
  check(new URL(page.url()).origin === baseURL, `after login the page is at ${page.url()}`);
}

async function flow(page, evilPage) {
  step('1. log in at the provider');
  await login(page);
  const session = await page.evaluate(async () => (await fetch('/session', { headers: { 'X-CSRF': '1' } })).status);
  check(session === 200, `/session after login answered ${session}`);

  step('2. a WebSocket and an EventSource through the BFF work');
  const opened = await page.evaluate(
    ({ wsURL, timeout }) =>
      new Promise((resolve) => {
        const ws = new WebSocket(wsURL);
        window.__ws = ws;
        window.__wsClosed = null;
        ws.onclose = (e) => (window.__wsClosed = { code: e.code });
        const timer = setTimeout(() => resolve({ error: 'no echo in time' }), timeout);
        ws.onopen = () => ws.send('ping');
        ws.onmessage = (e) => {
          clearTimeout(timer);
          resolve({ echo: e.data });
        };
        ws.onerror = () => resolve({ error: 'the socket failed' });
      }),
    { wsURL, timeout: STEP_TIMEOUT },
  );
  check(opened.echo === 'ping', `WebSocket: ${JSON.stringify(opened)}`);
  const events = await page.evaluate(
    (timeout) =>
      new Promise((resolve) => {
        const es = new EventSource('/api/events');
        window.__es = es;
        const got = [];
        const timer = setTimeout(() => resolve({ got, error: 'too few events in time' }), timeout);
        es.onmessage = (e) => {
          got.push(e.data);
          if (got.length === 2) {
            clearTimeout(timer);
            resolve({ got });
          }
        };
      }),
    STEP_TIMEOUT,
  );
  check(events.got.length === 2 && events.got[0].startsWith('tick'), `EventSource: ${JSON.stringify(events)}`);

  step('3. a page of another origin (same site: the cookie goes along) cannot open the WebSocket');
  await evilPage.goto(`${evilURL}/`);
  const hijack = await evilPage.evaluate(
    ({ wsURL, timeout }) =>
      new Promise((resolve) => {
        const ws = new WebSocket(wsURL);
        const timer = setTimeout(() => resolve('still connecting'), timeout);
        ws.onopen = () => {
          clearTimeout(timer);
          resolve('opened');
        };
        ws.onclose = () => {
          clearTimeout(timer);
          resolve('refused');
        };
      }),
    { wsURL, timeout: STEP_TIMEOUT },
  );
  check(hijack === 'refused', `the cross-site WebSocket: ${hijack}`);

  step('4. logout closes the open socket and ends the event stream');
  check(await page.evaluate(() => window.__wsClosed === null && window.__es.readyState === EventSource.OPEN), 'the socket or the stream closed before logout');
  const status = await page.evaluate(async () => (await fetch('/logout', { method: 'POST', headers: { 'X-CSRF': '1' } })).status);
  check(status === 200, `POST /logout answered ${status}`);
  await page.waitForFunction(() => window.__wsClosed !== null, null, { timeout: STEP_TIMEOUT });
  // The stream is cut; EventSource reconnects, gets 401, and gives up.
  await page.waitForFunction(() => window.__es.readyState === EventSource.CLOSED, null, { timeout: STEP_TIMEOUT });
  const code = await page.evaluate(() => window.__wsClosed.code);
  process.stdout.write(`     the socket closed with code ${code}\n`);
}

async function within(p, ms) {
  let timer;
  await Promise.race([Promise.resolve(p).catch(() => {}), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

let browser;
const watchdog = setTimeout(() => {
  process.stderr.write(`FAIL: the run took longer than ${RUN_TIMEOUT / 1000} s (last step: ${lastStep})\n`);
  within(browser?.close(), 5000).finally(() => process.exit(1));
}, RUN_TIMEOUT);

let failed = null;
let page;
try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: STEP_TIMEOUT * 2,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  page = await context.newPage();
  const evilPage = await context.newPage();
  await flow(page, evilPage);
} catch (err) {
  failed = err;
  if (page) await within(page.screenshot({ path: path.join(artifacts, 'streams-failure.png'), fullPage: true }), 5000);
} finally {
  await within(browser?.close(), 10_000);
  clearTimeout(watchdog);
}
if (failed) {
  const msg = failed instanceof Failure ? failed.message : String(failed?.stack ?? failed);
  die(`at step "${lastStep}": ${msg.replace(/\x1b\[[0-9;]*m/g, '')}`);
}
process.stdout.write('OK streams\n');
