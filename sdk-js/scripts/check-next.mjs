// Builds test/next-app, a Next.js App Router app, against the packed
// @bffgate/client, and fails on anything wrong:
//   1. the tarball installs (offline) over the fixture's lockfile install and
//      `next build` (Turbopack, with its TypeScript check) succeeds, printing
//      no warning or error;
//   2. the prerendered pages hold what the server rendered through
//      SessionProvider, useSession and RequireAuth from the initial session
//      (a Server Component imports RequireAuth directly: that only builds
//      because the React entry starts with 'use client');
//   3. the browser chunks hold both entries and none of the server-only code;
//   4. when playwright-core (tests/browser) and Chromium are installed: `next
//      start` on loopback, the page loads in headless Chromium, hydrates with
//      no console error (React reports a hydration mismatch there) and shows
//      the signed-in user.
//
// The fixture's dependencies (next, react, typescript: ~370 MB) are not part of
// `npm ci` of this package. check:pack calls checkNext with install: false and
// skips this check when test/next-app has no install matching its lockfile;
// `npm run check:next` (make test-next) runs `npm ci` there first when needed.
//
// Usage: node scripts/check-next.mjs   (builds and packs this package itself)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const app = join(root, 'test/next-app');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// NEXT_TELEMETRY_DISABLED: no request to Next.js' telemetry server.
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' };
const BUILD_TIMEOUT = 600_000;
const PAGE_TIMEOUT = 30_000;

/** installed reports whether test/next-app/node_modules is an install of its current lockfile. */
export function installed() {
  const marker = join(app, 'node_modules/.package-lock.json');
  return existsSync(marker) && statSync(marker).mtimeMs >= statSync(join(app, 'package-lock.json')).mtimeMs;
}

/**
 * checkNext runs the checks above on `tarball`. Returns false when skipped (not
 * installed and install is false); throws on any failure.
 */
export async function checkNext({ tarball, install }) {
  if (!installed()) {
    if (!install) return false;
    console.log('check:next: npm ci in test/next-app');
    execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, stdio: 'inherit' });
  }
  // --no-save: package.json and package-lock.json stay as committed. The old copy goes first:
  // npm takes a tarball of the same version for "up to date" and keeps the old files.
  rmSync(join(app, 'node_modules/@bffgate'), { recursive: true, force: true });
  execFileSync(npm, ['install', '--no-save', '--no-audit', '--no-fund', '--offline', '--loglevel=error', tarball], {
    cwd: app,
    stdio: 'inherit',
  });
  const nextBin = join(app, 'node_modules/next/dist/bin/next');
  rmSync(join(app, '.next'), { recursive: true, force: true });

  // 1. next build.
  const started = Date.now();
  let out;
  try {
    out = execFileSync(process.execPath, [nextBin, 'build'], {
      cwd: app,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: BUILD_TIMEOUT,
    });
  } catch (err) {
    throw new Error(`next build failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
  console.log(`check:next: next build: ok (${Math.round((Date.now() - started) / 1000)} s)`);
  // Every build starts without .next in a fresh checkout (CI), where Next.js notes that it has no
  // build cache: the one line that says nothing about the package.
  const noisy = out
    .split('\n')
    .filter((l) => /⚠|warn|error|use client|hydrat|can't resolve|not found/i.test(l) && !/_not-found/.test(l))
    .filter((l) => !/No build cache found/.test(l));
  if (noisy.length) throw new Error(`next build printed:\n${noisy.join('\n')}`);

  // 2. What the server rendered.
  const html = (page) => readFileSync(join(app, '.next/server/app', page), 'utf8');
  const home = html('index.html');
  const guarded = html('guarded.html');
  const expect = (what, ok) => {
    if (!ok) throw new Error(`next build: ${what}`);
  };
  // Tags (not the RSC payload's JSON, which also names the elements passed as props).
  expect('/ does not render the signed-in user (useSession with initialSession)', home.includes('<p id="status">Signed in as <!-- -->Alice'));
  expect("/ does not render RequireAuth's children", home.includes('<p id="guarded">Orders for a signed-in user</p>'));
  expect('/ renders the loading or fallback element', !home.includes('<p>Loading…</p>') && !home.includes('<p>Please log in</p>'));
  expect('/guarded does not render the signed-in user', guarded.includes('<p id="status">Signed in as <!-- -->Alice'));
  expect('/guarded renders loading', !guarded.includes('<p>Loading…</p>'));

  // 3. The browser chunks.
  const chunksDir = join(app, '.next/static/chunks');
  const chunks = readdirSync(chunksDir, { recursive: true })
    .filter((f) => String(f).endsWith('.js'))
    .map((f) => readFileSync(join(chunksDir, String(f)), 'utf8'));
  const shipped = (s) => chunks.some((c) => c.includes(s));
  expect('no browser chunk holds the React entry', shipped('@bffgate/client/react: '));
  expect('no browser chunk holds the client (createClient)', shipped('@bffgate/client: csrfHeader.name must not be empty'));
  expect('server-only code (app/server-session.ts) reached a browser chunk', !shipped('bffgate.invalid'));
  console.log('check:next: prerendered pages and browser chunks: ok');

  // 4. Hydration in headless Chromium.
  const chromiumPath = process.env.BFFGATE_CHROMIUM || '/usr/bin/chromium';
  let playwright;
  try {
    playwright = createRequire(join(root, '../tests/browser/package.json'))('playwright-core');
  } catch {
    playwright = null;
  }
  if (!playwright || !existsSync(chromiumPath)) {
    console.log('check:next: hydration in Chromium: SKIPPED (needs tests/browser npm ci and Chromium)');
    return true;
  }
  const hydrateStarted = Date.now();
  await hydrates(playwright, nextBin, chromiumPath);
  console.log(`check:next: hydration in Chromium: ok, no console error (${Math.round((Date.now() - hydrateStarted) / 1000)} s)`);
  return true;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function hydrates(playwright, nextBin, executablePath) {
  const port = await freePort();
  const server = spawn(process.execPath, [nextBin, 'start', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: app,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  server.stdout.on('data', (d) => (log += d));
  server.stderr.on('data', (d) => (log += d));
  const browser = await playwright.chromium.launch({ executablePath, args: ['--no-sandbox'] });
  try {
    const base = `http://127.0.0.1:${port}`;
    // Bounded wait for the server to answer.
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/session`)).ok) break;
      } catch {
        // not listening yet
      }
      if (i >= 300 || server.exitCode !== null) throw new Error(`next start did not answer:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const page = await browser.newPage();
    const problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`);
    });
    const sessionAsked = page.waitForRequest((r) => new URL(r.url()).pathname === '/session', { timeout: PAGE_TIMEOUT });
    await page.goto(base + '/', { timeout: PAGE_TIMEOUT });
    // The store asks /session from an effect: hydration has run once it does.
    await sessionAsked;
    await page.waitForLoadState('networkidle', { timeout: PAGE_TIMEOUT });
    const status = await page.textContent('#status', { timeout: PAGE_TIMEOUT });
    if (!status?.includes('Signed in as Alice')) problems.push(`#status after hydration: ${JSON.stringify(status)}`);
    if (problems.length) throw new Error(`hydration in Chromium:\n${problems.join('\n')}`);
  } finally {
    await browser.close();
    server.kill();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const tmp = mkdtempSync(join(tmpdir(), 'bffgate-next-'));
  try {
    execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'inherit' });
    const packed = JSON.parse(execFileSync(npm, ['pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' }));
    await checkNext({ tarball: join(tmp, packed[0].filename), install: true });
    console.log('check:next: all passed');
  } catch (err) {
    console.error(`check:next: ${err.message}`);
    process.exitCode = 1;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
