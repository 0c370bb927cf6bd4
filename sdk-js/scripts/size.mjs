// Gzipped size budget of what an app ships: the ESM build of each entry,
// bundled and minified the way an app's bundler would (rolldown, Vite's
// bundler), React left external.
// Usage: node scripts/size.mjs [package-dir]   (default: this package)
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { rolldown } from 'rolldown';

const pkgDir = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));

// Bytes of gzip -9. Raise only on purpose, and say why in the commit.
const BUDGETS = [
  { name: '@bffgate/client', entries: ['dist/index.js'], limit: 3100 },
  { name: '@bffgate/client + @bffgate/client/react', entries: ['dist/index.js', 'dist/react.js'], limit: 4000 },
];

async function gzipped(entries) {
  const bundle = await rolldown({
    input: entries.map((e) => resolve(pkgDir, e)),
    external: [/^react(\/|$)/],
    logLevel: 'silent',
  });
  const { output } = await bundle.generate({ format: 'es', minify: true });
  await bundle.close();
  const code = output.filter((c) => c.type === 'chunk').map((c) => c.code).join('\n');
  return gzipSync(code, { level: 9 }).length;
}

let failed = false;
for (const b of BUDGETS) {
  const size = await gzipped(b.entries);
  const ok = size <= b.limit;
  if (!ok) failed = true;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${b.name}: ${size} B gzip (budget ${b.limit} B)`);
}
if (failed) {
  console.error('size: over budget');
  process.exit(1);
}
