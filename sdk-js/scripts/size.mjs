// Gzipped size budget of what an app ships: the ESM build, bundled and
// minified the way an app's bundler would (rolldown, Vite's bundler), React
// left external.
// Usage: node scripts/size.mjs [package-dir]   (default: this package)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { rolldown } from 'rolldown';

const pkgDir = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));

// Bytes of gzip -9, of a small app's bundle: `use` is its code, with CORE and REACT for the
// package's two entries. Raise a budget only on purpose, and say why in the commit.
const BUDGETS = [
  // What a plain-JS app that only needs the client ships (the store and the React code shake off).
  { name: 'createClient alone', limit: 3350, use: `import { createClient } from CORE; globalThis.x = createClient;` },
  // Everything `@bffgate/client` exports (client, errors, session store).
  { name: '@bffgate/client, all of it', limit: 4700, use: `export * from CORE;` },
  // The React example of the README: client, provider, useSession, RequireAuth.
  {
    name: 'a React app (createClient, SessionProvider, useSession, RequireAuth)',
    limit: 5050,
    use: `import { createClient } from CORE; import { SessionProvider, useSession, RequireAuth } from REACT;
      globalThis.x = [createClient, SessionProvider, useSession, RequireAuth];`,
  },
  // Both entries, all of them.
  { name: '@bffgate/client + @bffgate/client/react, all of it', limit: 5500, use: `export * from CORE; export * from REACT;` },
];

async function gzipped(use) {
  const dir = mkdtempSync(join(tmpdir(), 'bffgate-size-'));
  try {
    const entry = join(dir, 'app.js');
    writeFileSync(
      entry,
      use
        .replaceAll('CORE', JSON.stringify(resolve(pkgDir, 'dist/index.js')))
        .replaceAll('REACT', JSON.stringify(resolve(pkgDir, 'dist/react.js'))),
    );
    const bundle = await rolldown({ input: entry, external: [/^react(\/|$)/], logLevel: 'silent' });
    const { output } = await bundle.generate({ format: 'es', minify: true });
    await bundle.close();
    const code = output.filter((c) => c.type === 'chunk').map((c) => c.code).join('\n');
    return gzipSync(code, { level: 9 }).length;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let failed = false;
for (const b of BUDGETS) {
  const size = await gzipped(b.use);
  const ok = size <= b.limit;
  if (!ok) failed = true;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${b.name}: ${size} B gzip (budget ${b.limit} B)`);
}
if (failed) {
  console.error('size: over budget');
  process.exit(1);
}
