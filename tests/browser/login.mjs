// Drives the demo SPA in headless Chromium through a real login against the
// test OpenID Provider, API calls, and logout; records everything the browser
// received. Run by browser_test.go (which also searches the recording for the
// session's real tokens); it runs by hand against `make demo` too:
//
//   BFFGATE_URL=http://localhost:8080 BFFGATE_MODE=token-mediating node tests/browser/login.mjs
//
// Env: BFFGATE_URL (the stack, required), BFFGATE_MODE ("bff" or
// "token-mediating", required), BFFGATE_ARTIFACTS (where the screenshots and
// the recording go; default tests/artifacts), BFFGATE_CHROMIUM (default
// /usr/bin/chromium).
//
// Output: lines "STEP <what>" on stdout as it goes, "OK" at the end; exit 1
// with "FAIL: <why>" on stderr on any failure. Files in the artifacts dir:
// logged-in-<mode>.png, recording-<mode>.json, and on failure
// failure-<mode>.png.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const STEP_TIMEOUT = 15_000; // every single wait
const RUN_TIMEOUT = 80_000; // the whole run, as a last resort
const SESSION_COOKIE = '__Host-bffgate';
const USER = 'alice';
const PASSWORD = 'alice-password';
const USER_NAME = 'Alice Example';

const baseURL = (process.env.BFFGATE_URL ?? '').replace(/\/+$/, '');
const mode = process.env.BFFGATE_MODE ?? '';
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

if (!/^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(baseURL)) die(`BFFGATE_URL must be http://127.0.0.1:<port> or http://localhost:<port> (loopback only), got ${JSON.stringify(baseURL)}`);
if (mode !== 'bff' && mode !== 'token-mediating') die(`BFFGATE_MODE must be "bff" or "token-mediating", got ${JSON.stringify(mode)}`);
if (!fs.existsSync(executablePath)) {
  die(`${executablePath} is missing: install Chromium with \`apt-get install -y chromium\` (or set BFFGATE_CHROMIUM)`);
}
fs.mkdirSync(artifacts, { recursive: true });

const origin = new URL(baseURL).origin;
const recordingFile = path.join(artifacts, `recording-${mode}.json`);
const recording = {
  mode,
  url: baseURL,
  chromium: '',
  steps: [],
  // Values of the session cookie the browser held (from context.cookies()).
  sessionCookies: [],
  // Everything the browser received, from Playwright's events: url, status,
  // headers (all, Set-Cookie lines one by one), body text for text-like
  // content while Chromium still has it (a fetch response's body is gone
  // once the page navigates away, as after POST /logout).
  responses: [],
  // Every response body from the network, read by pausing each response
  // (CDP Fetch domain, response stage) before the page gets it, so none is
  // missed: url, status, headers (without Set-Cookie: Chromium leaves it out
  // here), body (binary bodies as latin1).
  intercepted: [],
  // Everything the browser sent.
  requests: [],
  // What page scripts could read: localStorage, sessionStorage, document.cookie.
  storage: [],
  // Records still being read when the run ended (should be 0).
  unsettled: 0,
  error: null,
};

const pending = new Set();
function track(p) {
  pending.add(p);
  p.finally(() => pending.delete(p));
}
async function settle() {
  while (pending.size) await Promise.allSettled([...pending]);
}

const TEXTUAL = /^(text\/|application\/(json|javascript|ecmascript|xml|x-www-form-urlencoded)|[^;]*\+(json|xml))/i;

function recordRequest(req) {
  track(
    (async () => {
      let headers;
      try {
        headers = await req.allHeaders();
      } catch {
        headers = req.headers();
      }
      recording.requests.push({ url: req.url(), method: req.method(), resourceType: req.resourceType(), headers, postData: req.postData() ?? null });
    })(),
  );
}

function recordResponse(res) {
  track(
    (async () => {
      const req = res.request();
      const entry = { url: res.url(), status: res.status(), method: req.method(), resourceType: req.resourceType(), headers: [], body: null, bodyError: null };
      recording.responses.push(entry);
      try {
        entry.headers = await res.headersArray();
      } catch (err) {
        entry.headers = Object.entries(res.headers()).map(([name, value]) => ({ name, value }));
      }
      const type = entry.headers.find((h) => h.name.toLowerCase() === 'content-type')?.value ?? '';
      if (entry.status >= 300 && entry.status < 400) return; // redirects have no body to read
      if (type && !TEXTUAL.test(type)) {
        entry.bodyError = `not read: ${type}`;
        return;
      }
      try {
        entry.body = await res.text();
      } catch (err) {
        entry.bodyError = String(err?.message ?? err).split('\n')[0];
      }
    })(),
  );
}

// interceptBodies pauses every response of the page before Chromium hands
// it on, reads its body, and lets it go.
async function interceptBodies(context, page) {
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', (e) =>
    track(
      (async () => {
        const entry = { url: e.request.url, method: e.request.method, status: e.responseStatusCode ?? 0, headers: e.responseHeaders ?? [], body: null, bodyError: null };
        recording.intercepted.push(entry);
        try {
          if (e.responseErrorReason) entry.bodyError = `network error ${e.responseErrorReason}`;
          else if (entry.status >= 300 && entry.status < 400) entry.bodyError = 'redirect';
          else {
            const b = await cdp.send('Fetch.getResponseBody', { requestId: e.requestId });
            entry.body = b.base64Encoded ? Buffer.from(b.body, 'base64').toString('latin1') : b.body;
          }
        } catch (err) {
          entry.bodyError = String(err?.message ?? err).split('\n')[0];
        } finally {
          await cdp.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => {});
        }
      })(),
    ),
  );
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*', requestStage: 'Response' }] });
}

async function snapshotStorage(page, when) {
  const cookies = await page.context().cookies();
  const s = await page.evaluate(() => {
    const dump = (st) => Object.fromEntries(Array.from({ length: st.length }, (_, i) => st.key(i)).map((k) => [k, st.getItem(k)]));
    return { localStorage: dump(window.localStorage), sessionStorage: dump(window.sessionStorage), documentCookie: document.cookie };
  });
  recording.storage.push({ when, url: page.url(), ...s, cookies });
  return s;
}

const started = Date.now();
function step(name) {
  recording.steps.push(name);
  process.stdout.write(`STEP ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s ${name}\n`);
}

async function text(page, selector) {
  const loc = page.locator(selector);
  await loc.waitFor({ state: 'visible' });
  return (await loc.textContent())?.trim() ?? '';
}

// fetchFromPage makes a GET from the page, as the SDK would (CSRF header).
async function fetchFromPage(page, url) {
  return page.evaluate(
    async ({ url, timeout }) => {
      const r = await fetch(url, { headers: { 'X-CSRF': '1', Accept: 'application/json' }, cache: 'no-store', signal: AbortSignal.timeout(timeout) });
      return { status: r.status, body: await r.text() };
    },
    { url, timeout: STEP_TIMEOUT },
  );
}

async function jsonOf(page, selector) {
  const t = await text(page, selector);
  try {
    return JSON.parse(t);
  } catch {
    throw new Failure(`${selector} is not JSON: ${t.slice(0, 300)}`);
  }
}

// setCookieLines returns the Set-Cookie lines the SPA's origin (the BFF)
// sent, for cookies whose name starts with prefix.
function setCookieLines(prefix) {
  const lines = [];
  for (const r of recording.responses) {
    if (new URL(r.url).origin !== origin) continue;
    for (const h of r.headers) {
      if (h.name.toLowerCase() === 'set-cookie' && h.value.startsWith(prefix)) lines.push({ url: r.url, value: h.value });
    }
  }
  return lines;
}

// checkBffCookies checks every cookie the BFF has set so far (the
// session's, the login state's, and their deletions): a __Host- cookie,
// Secure, HttpOnly, SameSite=Lax, Path=/, no Domain.
function checkBffCookies() {
  for (const l of setCookieLines('')) {
    check(l.value.startsWith('__Host-'), `the BFF set a cookie without the __Host- prefix at ${l.url}: ${l.value.split('=')[0]}`);
    const attrs = l.value.split(';').slice(1).map((a) => a.trim().toLowerCase());
    for (const want of ['secure', 'httponly', 'path=/', 'samesite=lax']) check(attrs.includes(want), `Set-Cookie from ${l.url} lacks ${want}: ${l.value}`);
    check(!attrs.some((a) => a.startsWith('domain=')), `Set-Cookie from ${l.url} has a Domain attribute: ${l.value}`);
  }
}

async function run(browser) {
  recording.chromium = browser.version();
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  context.on('request', recordRequest);
  context.on('response', recordResponse);
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  await interceptBodies(context, page);
  try {
    await flow(context, page);
  } catch (err) {
    await page.screenshot({ path: path.join(artifacts, `failure-${mode}.png`), fullPage: true, timeout: 5000 }).catch(() => {});
    if (pageErrors.length) err.message += `\npage errors: ${pageErrors.join('; ')}`;
    err.message += `\npage URL: ${page.url()}`;
    throw err;
  }
  check(pageErrors.length === 0, `the page threw: ${pageErrors.join('; ')}`);
}

async function flow(context, page) {
  step('open the SPA logged out');
  await page.goto(baseURL + '/');
  await page.locator('#logged-out').waitFor({ state: 'visible' });
  await page.locator('#login').waitFor({ state: 'visible' });
  check((await context.cookies(baseURL)).every((c) => c.name !== SESSION_COOKIE), `a ${SESSION_COOKIE} cookie exists before login`);

  step('log in at the OpenID Provider');
  await page.locator('#login').click();
  const loginField = page.locator('input[name="login"]');
  await loginField.waitFor({ state: 'visible' });
  check(!page.url().startsWith(origin + '/'), `the login form is on the SPA's origin (${page.url()}), not the provider's`);
  await loginField.fill(USER);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.locator('form button[type="submit"]').first().click();

  step('consent');
  const allow = page.getByRole('button', { name: 'Allow' });
  const userName = page.locator('#user-name');
  await allow.or(userName).first().waitFor({ state: 'visible' });
  if (await allow.isVisible()) await allow.click();

  step('back on the SPA, logged in');
  await userName.waitFor({ state: 'visible' });
  check(new URL(page.url()).origin === origin, `after login the page is ${page.url()}, not the SPA`);
  check((await userName.textContent())?.trim() === USER_NAME, `#user-name is ${JSON.stringify(await userName.textContent())}, want ${JSON.stringify(USER_NAME)}`);
  const email = await text(page, '#user-email');
  check(email.includes('@'), `#user-email is ${JSON.stringify(email)}`);
  const shownMode = await text(page, '#mode');
  check(shownMode === mode, `#mode shows ${JSON.stringify(shownMode)}, want ${JSON.stringify(mode)}`);
  check(!page.url().includes('code='), `the authorization code is still in the address bar: ${page.url()}`);

  step('the session cookie');
  const cookies = await context.cookies(baseURL);
  const sc = cookies.filter((c) => c.name === SESSION_COOKIE);
  check(sc.length === 1, `Chromium did not store the ${SESSION_COOKIE} cookie over ${origin} (cookies: ${cookies.map((c) => c.name).join(', ') || 'none'}); Set-Cookie lines seen: ${JSON.stringify(setCookieLines(SESSION_COOKIE + '='))}`);
  const c = sc[0];
  recording.sessionCookies.push(c.value);
  check(c.name.startsWith('__Host-'), `cookie name ${c.name} lacks the __Host- prefix`);
  check(c.httpOnly === true, `${c.name} is not HttpOnly`);
  check(c.secure === true, `${c.name} is not Secure`);
  check(c.sameSite === 'Lax', `${c.name} is SameSite=${c.sameSite}, want Lax`);
  check(c.path === '/', `${c.name} has Path=${c.path}, want /`);
  check(c.domain === new URL(baseURL).hostname, `${c.name} has domain ${c.domain}, want host-only ${new URL(baseURL).hostname}`);
  const issued = setCookieLines(SESSION_COOKIE + '=').filter((l) => !/^[^=]+=;/.test(l.value) && !/max-age=0/i.test(l.value));
  check(issued.length >= 1, `no Set-Cookie line from ${origin} issued ${SESSION_COOKIE}`);
  checkBffCookies();
  const st = await snapshotStorage(page, 'logged in');
  check(!st.documentCookie.includes(SESSION_COOKIE), `document.cookie shows ${SESSION_COOKIE}: it must be HttpOnly`);

  step('call the API through the BFF');
  await page.locator('#call-api').click();
  const api = await jsonOf(page, '#api-result');
  const apiStatus = await text(page, '#api-status');
  check(apiStatus === 'HTTP 200', `#api-status is ${JSON.stringify(apiStatus)}: ${JSON.stringify(api)}`);
  check(typeof api.authorization === 'string' && /^Bearer \(a \d+-character token\)$/.test(api.authorization), `the API saw no bearer token: authorization=${JSON.stringify(api.authorization)}`);
  check(api.token?.active === true, `the API's introspection says the token is not active: ${JSON.stringify(api.token)}`);
  check(api.token?.sub === USER, `the token's sub is ${JSON.stringify(api.token?.sub)}, want ${USER}`);
  check(Array.isArray(api.cookies), `the API's cookies is not a list: ${JSON.stringify(api.cookies)}`);
  check(!api.cookies.includes(SESSION_COOKIE), `the API received the session cookie: cookies=${JSON.stringify(api.cookies)}`);
  check(api.identity?.['X-User'] === USER, `X-User is ${JSON.stringify(api.identity?.['X-User'])}, want ${USER}`);
  check(api.identity?.['X-User-Email'] === email, `X-User-Email is ${JSON.stringify(api.identity?.['X-User-Email'])}, want ${email}`);

  if (mode === 'token-mediating') {
    step('call the API with an access token from /token');
    const directReq = page.waitForRequest((r) => r.url() === `${origin}/direct/whoami`);
    await page.locator('#call-api-token').click();
    const req = await directReq;
    const headers = await req.allHeaders();
    check(/^Bearer \S+$/.test(headers.authorization ?? ''), `the request to /direct/whoami carried no Authorization: Bearer header (got ${headers.authorization === undefined ? 'none' : 'another scheme'})`);
    check(!(headers.cookie ?? '').includes(SESSION_COOKIE), 'the request to /direct/whoami carried the session cookie');
    const direct = await jsonOf(page, '#api-token-result');
    const directStatus = await text(page, '#api-token-status');
    check(directStatus === 'HTTP 200', `#api-token-status is ${JSON.stringify(directStatus)}: ${JSON.stringify(direct)}`);
    check(direct.token?.active === true, `the direct API's introspection says the token is not active: ${JSON.stringify(direct.token)}`);
    check(direct.token?.sub === USER, `the direct API's token sub is ${JSON.stringify(direct.token?.sub)}`);
    check(Array.isArray(direct.cookies) && direct.cookies.length === 0, `the direct API received cookies: ${JSON.stringify(direct.cookies)}`);
    const info = await text(page, '#token-info');
    check(/Got an access token \(\d+ characters/.test(info), `#token-info is ${JSON.stringify(info)}`);
    check(!(await page.locator('#token-mode-off').isVisible()), '#token-mode-off is shown in token-mediating mode');
    await snapshotStorage(page, 'after the token call');
  } else {
    step('token-mediating mode is off');
    await page.locator('#token-mode-off').waitFor({ state: 'visible' });
    const got = await fetchFromPage(page, '/token');
    check(got.status === 404, `GET /token answered ${got.status} in bff mode, want 404: ${got.body.slice(0, 300)}`);
    // The app's own call: 404, and the app says why.
    const tokenRes = page.waitForResponse((r) => r.url() === `${origin}/token`);
    await page.locator('#call-api-token').click();
    check((await tokenRes).status() === 404, `the app's GET /token answered ${(await tokenRes).status()} in bff mode, want 404`);
    await page.waitForFunction(() => document.querySelector('#call-api-token')?.disabled === false, null, { timeout: STEP_TIMEOUT });
    await page.locator('#token-mode-off').waitFor({ state: 'visible' });
    for (const id of ['#token-info', '#api-token-result', '#api-token-error']) check(!(await page.locator(id).isVisible()), `${id} is shown in bff mode`);
  }

  step('screenshot');
  await page.screenshot({ path: path.join(artifacts, `logged-in-${mode}.png`), fullPage: true });

  step('log out');
  await page.locator('#logout').click();
  const signOut = page.getByRole('button', { name: 'Yes, sign me out' });
  const loggedOut = page.locator('#logged-out');
  await signOut.or(loggedOut).first().waitFor({ state: 'visible' });
  if (await signOut.isVisible()) {
    step('confirm logout at the OpenID Provider');
    await signOut.click();
  }

  step('back on the SPA, logged out');
  await loggedOut.waitFor({ state: 'visible' });
  check(new URL(page.url()).origin === origin, `after logout the page is ${page.url()}, not the SPA`);
  check(!(await page.locator('#user-name').isVisible()), '#user-name is still shown after logout');
  check((await context.cookies(baseURL)).every((c) => c.name !== SESSION_COOKIE), `the ${SESSION_COOKIE} cookie survived logout`);
  const after = await fetchFromPage(page, '/session');
  check(after.status === 401, `GET /session after logout answered ${after.status}, want 401: ${after.body.slice(0, 300)}`);
  await snapshotStorage(page, 'logged out');
  await within(settle(), 5000);
  checkBffCookies();
}

// within waits for p, at most ms; it never rejects.
async function within(p, ms) {
  let timer;
  await Promise.race([Promise.resolve(p).catch(() => {}), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

let browser;
const watchdog = setTimeout(() => {
  process.stderr.write(`FAIL: the run took longer than ${RUN_TIMEOUT / 1000} s (last step: ${recording.steps.at(-1) ?? 'none'})\n`);
  within(browser?.close(), 5000).finally(() => process.exit(1));
}, RUN_TIMEOUT);

let failed = null;
try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: STEP_TIMEOUT * 2,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  await run(browser);
} catch (err) {
  failed = err;
} finally {
  // Read the last bodies before the browser goes away, then close it.
  await within(settle(), 5000);
  recording.unsettled = pending.size;
  await within(browser?.close(), 10_000);
  clearTimeout(watchdog);
}
if (failed) recording.error = `${recording.steps.at(-1) ?? 'launch'}: ${failed.message}`;
try {
  fs.writeFileSync(recordingFile, JSON.stringify(recording, null, 1));
} catch (err) {
  failed ??= err;
}
if (failed) {
  const where = recording.steps.at(-1) ?? 'launching Chromium';
  const msg = failed instanceof Failure ? failed.message : String(failed?.stack ?? failed);
  die(`${mode}: at step "${where}": ${msg.replace(/\x1b\[[0-9;]*m/g, '')}`);
}
process.stdout.write(`OK ${mode}: ${recording.responses.length} responses recorded in ${recordingFile}\n`);
