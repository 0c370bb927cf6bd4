// Drives the demo SPA in two tabs of one headless Chromium (one cookie jar)
// against the real stack, for what @bffgate/client keeps true across tabs
// and time. Run by tabs_test.go; by hand against `make demo`:
//
//   BFFGATE_URL=http://127.0.0.1:8080 node tests/browser/tabs.mjs
//
// Steps:
//   1. a signed-out visit: /session?probe=1 answers 200 and the console
//      shows no error;
//   2. a 401 from the API updates the state: the session is ended behind
//      the SDK's back (a raw POST /logout), the next API call through the
//      SDK gets a real 401 and the page switches to signed out;
//   3. a login in one tab refreshes the other (no reload);
//   4. logout in one tab signs the other tab out at once, without it asking
//      /session (the message between tabs, not a refetch);
//   5. refetch on focus: the session is ended behind the SDK's back again,
//      and a focus event makes the other tab ask /session and sign out;
//   6. a failed login (`?error=` on the URL the app lands on, as the BFF
//      will send it) is shown and removed from the address bar.
//
// Env: BFFGATE_URL (required), BFFGATE_ARTIFACTS (default tests/artifacts),
// BFFGATE_CHROMIUM (default /usr/bin/chromium). Output: "STEP …" lines, "OK"
// at the end; exit 1 with "FAIL: <why>" on stderr, and
// tabs-failure-<n>.png in the artifacts dir.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const STEP_TIMEOUT = 15_000;
const RUN_TIMEOUT = 100_000;
const USER = 'alice';
const PASSWORD = 'alice-password';
const USER_NAME = 'Alice Example';

const baseURL = (process.env.BFFGATE_URL ?? '').replace(/\/+$/, '');
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
if (!/^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(baseURL)) die(`BFFGATE_URL must be http://127.0.0.1:<port> or http://localhost:<port>, got ${JSON.stringify(baseURL)}`);
if (!fs.existsSync(executablePath)) die(`${executablePath} is missing: install Chromium with \`apt-get install -y chromium\` (or set BFFGATE_CHROMIUM)`);
fs.mkdirSync(artifacts, { recursive: true });
const origin = new URL(baseURL).origin;

const started = Date.now();
let lastStep = 'launch';
function step(name) {
  lastStep = name;
  process.stdout.write(`STEP ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s ${name}\n`);
}

/** A tab, with what it sent and what its console printed. */
async function openTab(context, name) {
  const page = await context.newPage();
  const tab = { name, page, requests: [], responses: [], console: [], errors: [] };
  page.on('request', (r) => tab.requests.push(r.url()));
  page.on('response', (r) => tab.responses.push({ url: r.url(), status: r.status() }));
  page.on('console', (m) => tab.console.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => tab.errors.push(String(e)));
  return tab;
}

const sessionRequests = (tab) => tab.requests.filter((u) => new URL(u).pathname === '/session').length;

async function visible(tab, selector) {
  await tab.page.locator(selector).waitFor({ state: 'visible' });
}

/** Marks the document, so that a later check can tell that the tab did not reload. */
async function mark(tab) {
  await tab.page.evaluate(() => {
    window.__bffgateTabMark = true;
  });
}
async function notReloaded(tab) {
  check(await tab.page.evaluate(() => window.__bffgateTabMark === true), `${tab.name} reloaded; it should have changed in place`);
}

/** Logs in from tab (at the provider: form and consent if it asks; with its SSO session it may not). */
async function login(tab) {
  const { page } = tab;
  await page.locator('#login').click();
  const form = page.locator('input[name="login"]');
  const allow = page.getByRole('button', { name: 'Allow' });
  const user = page.locator('#user-name');
  await form.or(allow).or(user).first().waitFor({ state: 'visible' });
  if (await form.isVisible()) {
    await form.fill(USER);
    await page.locator('input[name="password"]').fill(PASSWORD);
    await page.locator('form button[type="submit"]').first().click();
    await allow.or(user).first().waitFor({ state: 'visible' });
  }
  if (await allow.isVisible()) await allow.click();
  await user.waitFor({ state: 'visible' });
  check((await user.textContent())?.trim() === USER_NAME, `${tab.name}: #user-name is ${JSON.stringify(await user.textContent())}`);
}

/** Ends the session at the BFF behind the SDK's back: a POST /logout the app does not know of. */
async function endSessionBehindTheSdk(tab) {
  const status = await tab.page.evaluate(async () => {
    const r = await fetch('/logout', { method: 'POST', headers: { 'X-CSRF': '1' }, cache: 'no-store' });
    return r.status;
  });
  check(status === 200, `the raw POST /logout answered ${status}`);
}

async function flow(context, tabs) {
  step('1. a signed-out visit is quiet: /session?probe=1 answers 200, no console error');
  const a = await openTab(context, 'tab A');
  tabs.push(a);
  const probe = a.page.waitForResponse((r) => new URL(r.url()).pathname === '/session');
  await a.page.goto(baseURL + '/');
  const probeRes = await probe;
  check(new URL(probeRes.url()).search === '?probe=1', `the SDK asked ${probeRes.url()}, want /session?probe=1`);
  check(probeRes.status() === 200, `/session?probe=1 answered ${probeRes.status()} to a signed-out visitor, want 200`);
  check((await probeRes.json()).authenticated === false, '/session?probe=1 did not say authenticated:false');
  await visible(a, '#logged-out');
  await a.page.waitForTimeout(300); // let any late console line arrive
  const errors = a.console.filter((m) => m.type === 'error');
  check(errors.length === 0, `the signed-out visit printed console errors: ${JSON.stringify(errors)}`);

  step('log in in tab A, open tab B');
  await login(a);
  const b = await openTab(context, 'tab B');
  tabs.push(b);
  await b.page.goto(baseURL + '/');
  await visible(b, '#user-name');
  await mark(a);
  await mark(b);

  step('2. a 401 from the API updates the state');
  await endSessionBehindTheSdk(a);
  await a.page.waitForTimeout(500);
  check(await a.page.locator('#user-name').isVisible(), 'tab A left the signed-in state before any call told it the session had ended');
  const apiRes = a.page.waitForResponse((r) => new URL(r.url()).pathname === '/api/whoami');
  await a.page.locator('#call-api').click();
  const api = await apiRes;
  check(api.status() === 401, `GET /api/whoami after the session ended answered ${api.status()}, want 401`);
  await visible(a, '#logged-out');
  await notReloaded(a);
  // tab A told tab B: the same cookie, so the same ended session.
  await visible(b, '#logged-out');
  await notReloaded(b);

  step('3. a login in tab A refreshes tab B in place');
  const bSessionsBefore = sessionRequests(b);
  await login(a);
  await visible(b, '#user-name');
  await notReloaded(b);
  check(sessionRequests(b) > bSessionsBefore, 'tab B shows the user without having asked /session');
  await mark(a);

  step('4. logout in tab A signs tab B out at once, without B asking /session');
  const bSessions = sessionRequests(b);
  await a.page.locator('#logout').click();
  await visible(b, '#logged-out');
  check(sessionRequests(b) === bSessions, `tab B asked /session ${sessionRequests(b) - bSessions} time(s): it should have learnt from tab A`);
  await notReloaded(b);
  // tab A goes through the provider's end-session page and back.
  const signOut = a.page.getByRole('button', { name: 'Yes, sign me out' });
  await signOut.or(a.page.locator('#logged-out')).first().waitFor({ state: 'visible' });
  if (await signOut.isVisible()) await signOut.click();
  await visible(a, '#logged-out');

  step('5. refetch on focus: tab B asks /session when it gets the focus');
  await login(a);
  await visible(b, '#user-name');
  await mark(b);
  await endSessionBehindTheSdk(a);
  await b.page.waitForTimeout(500);
  check(await b.page.locator('#user-name').isVisible(), 'tab B left the signed-in state before it got the focus');
  const bFocusSession = b.page.waitForResponse((r) => new URL(r.url()).pathname === '/session');
  await b.page.evaluate(() => window.dispatchEvent(new Event('focus')));
  const res = await bFocusSession;
  check(res.status() === 200 && (await res.json()).authenticated === false, `tab B's /session on focus answered ${res.status()}`);
  await visible(b, '#logged-out');
  await notReloaded(b);

  step('6. a failed login: ?error= on the landing URL is shown and removed from the address bar');
  await b.page.goto(baseURL + '/?tab=2&error=access_denied&error_description=The+user+said+no');
  const shown = (await b.page.locator('#login-error').textContent({ timeout: STEP_TIMEOUT }))?.trim();
  check(shown === 'Login failed: access_denied (The user said no)', `#login-error is ${JSON.stringify(shown)}`);
  check(new URL(b.page.url()).search === '?tab=2', `the address bar still has the error: ${b.page.url()}`);

  for (const t of tabs) check(t.errors.length === 0, `${t.name} threw: ${t.errors.join('; ')}`);
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
const tabs = [];
try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: STEP_TIMEOUT * 2,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  await flow(context, tabs);
} catch (err) {
  failed = err;
  for (const [i, t] of tabs.entries()) {
    await within(t.page.screenshot({ path: path.join(artifacts, `tabs-failure-${i + 1}.png`), fullPage: true }), 5000);
  }
} finally {
  await within(browser?.close(), 10_000);
  clearTimeout(watchdog);
}
if (failed) {
  const msg = failed instanceof Failure ? failed.message : String(failed?.stack ?? failed);
  const pages = tabs.map((t) => `${t.name}: ${t.page.url()}`).join(', ');
  die(`at step "${lastStep}": ${msg.replace(/\x1b\[[0-9;]*m/g, '')} (${pages})`);
}
process.stdout.write(`OK tabs: ${tabs.length} tabs\n`);
