// Checks what `npm pack` would publish, and fails on any problem:
//   1. publint: every message (error, warning or suggestion) fails;
//   2. arethetypeswrong (strict profile): types of `.` and `./react` under
//      TypeScript's node10, node16 (CJS and ESM) and bundler resolution;
//   3. the tarball installed in a temporary project: require() and import of
//      both entries on this Node, and tsc in node10, node16 (.cts, .mts) and
//      bundler projects;
//   4. the gzip size budget (scripts/size.mjs) of the installed package;
//   5. a Next.js App Router build of test/next-app against the tarball
//      (scripts/check-next.mjs), when that fixture has an install of its
//      lockfile (`npm run check:next` makes one); otherwise it says SKIPPED.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { checkNext } from './check-next.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });
const node = (args, opts) => run(process.execPath, args, opts);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const tmp = mkdtempSync(join(tmpdir(), 'bffgate-pack-'));
let failed = false;
const fail = (msg) => {
  console.error(`check:pack: ${msg}`);
  failed = true;
};

try {
  node([join(root, 'scripts/build.mjs')], { cwd: root });
  const packed = JSON.parse(
    execFileSync(npm, ['pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' }),
  );
  const tarball = join(tmp, packed[0].filename);
  console.log(`check:pack: ${packed[0].filename}, ${packed[0].entryCount} files, ${packed[0].size} B`);

  // 1. publint on the tarball itself.
  const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const { messages } = await publint({
    pack: { tarball: readFileSync(tarball).buffer },
    level: 'suggestion',
    strict: true,
  });
  for (const m of messages) fail(`publint ${m.type}: ${formatMessage(m, pkgJson) ?? m.code}`);
  if (messages.length === 0) console.log('check:pack: publint: no messages');

  // 2. arethetypeswrong on the tarball.
  try {
    run(npm, ['exec', '--no', '--', 'attw', tarball, '--profile', 'strict', '--no-emoji', '--no-color'], { cwd: root });
  } catch {
    fail('arethetypeswrong found problems (above)');
  }

  // 3. A project that installs the tarball.
  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{ "name": "app", "private": true }\n');
  run(npm, ['install', '--no-audit', '--no-fund', '--offline', '--no-package-lock', tarball], { cwd: app });
  // React and its types are optional peers: link this checkout's copies.
  for (const dep of ['react', '@types/react', 'csstype']) {
    const to = join(app, 'node_modules', dep);
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(join(root, 'node_modules', dep), to, 'dir');
  }

  const cjs = `
    const core = require('@bffgate/client');
    const react = require('@bffgate/client/react');
    const c = core.createClient({ fetch: () => Promise.reject(new Error('no')) });
    if (typeof c.getSession !== 'function' || typeof core.BffError !== 'function') throw new Error('core exports');
    if (typeof react.SessionProvider !== 'function' || typeof react.useSession !== 'function') throw new Error('react exports');
    if (require.resolve('@bffgate/client').indexOf('cjs') < 0) throw new Error('require did not pick the CJS build');
    console.log('check:pack: require() of both entries works');`;
  const esm = `
    import * as core from '@bffgate/client';
    import * as react from '@bffgate/client/react';
    if (typeof core.createClient !== 'function' || typeof react.RequireAuth !== 'function') throw new Error('exports');
    if (import.meta.resolve('@bffgate/client').includes('/cjs/')) throw new Error('import picked the CJS build');
    console.log('check:pack: import of both entries works');`;
  try {
    node(['-e', cjs], { cwd: app });
    node(['--input-type=module', '-e', esm], { cwd: app });
  } catch {
    fail('require/import of the installed tarball failed (above)');
  }

  const use = (from) => `
    import { createClient, createSessionStore, BffError, BffStepUpError, type BffClient, type Session } from '@bffgate/client';
    import { SessionProvider, RequireAuth, useSession, type SessionState } from '@bffgate/client/react';
    const client: BffClient = createClient();
    const s: Promise<Session> = client.getSession();
    const e: BffError = new BffError({ status: 401, code: 'unauthenticated' });
    const st: SessionState | null = null;
    export const used = [client, s, e, st, createSessionStore, BffStepUpError, SessionProvider, RequireAuth, useSession, ${JSON.stringify(from)}];
  `;
  const projects = {
    node10: { file: 'main.ts', options: { module: 'CommonJS', moduleResolution: 'Node10', ignoreDeprecations: '6.0' } },
    'node16-cjs': { file: 'main.cts', options: { module: 'Node16', moduleResolution: 'Node16' } },
    'node16-esm': { file: 'main.mts', options: { module: 'Node16', moduleResolution: 'Node16' } },
    bundler: { file: 'main.ts', options: { module: 'ESNext', moduleResolution: 'Bundler' } },
  };
  const tsc = require.resolve('typescript/bin/tsc');
  for (const [name, { file, options }] of Object.entries(projects)) {
    const dir = join(app, name);
    mkdirSync(dir);
    writeFileSync(join(dir, file), use(name));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { ...options, target: 'ES2022', lib: ['ES2022', 'DOM'], strict: true, noEmit: true, types: [] },
        files: [file],
      }),
    );
    try {
      node([tsc, '-p', dir]);
      console.log(`check:pack: tsc ${name}: ok`);
    } catch {
      fail(`tsc ${name} failed (above)`);
    }
  }

  // 4. The size budget, measured on the installed package.
  try {
    node([join(root, 'scripts/size.mjs'), join(app, 'node_modules/@bffgate/client')]);
  } catch {
    fail('size budget');
  }

  // 5. Next.js.
  try {
    if (!(await checkNext({ tarball, install: false }))) {
      console.log('check:pack: Next.js build: SKIPPED (no install in test/next-app: run `npm run check:next` once)');
    }
  } catch (err) {
    fail(err.message);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log('check:pack: all passed');
