// Builds dist/: ESM (dist/*.js + .d.ts) and CommonJS (dist/cjs/*.js + .d.ts,
// marked by dist/cjs/package.json {"type":"commonjs"}), and checks that the
// React entry still starts with 'use client' in both.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
}
writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');

for (const file of ['../dist/react.js', '../dist/cjs/react.js']) {
  const text = readFileSync(new URL(file, import.meta.url), 'utf8');
  // A directive must come before any statement ("use strict" is one too).
  if (!/^(?:(['"])use strict\1;\s*)?(['"])use client\2;/.test(text)) {
    console.error(`build: ${file.slice(3)} does not start with 'use client'`);
    process.exit(1);
  }
}
