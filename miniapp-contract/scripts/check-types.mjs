#!/usr/bin/env node
// Fails when src/schema.ts is not what openapi-typescript makes of openapi.json: someone
// changed the document (regenerated from the handlers) without regenerating the types.
// Fix with `npm run generate`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'huzhu-types-'));
try {
  const fresh = join(dir, 'schema.ts');
  execFileSync(join(root, 'node_modules', '.bin', 'openapi-typescript'), ['openapi.json', '--empty-objects-unknown', '--output', fresh], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const committed = readFileSync(join(root, 'src', 'schema.ts'), 'utf8');
  if (readFileSync(fresh, 'utf8') !== committed) {
    console.error('error: src/schema.ts is stale: it does not match openapi.json. Run `npm run generate` in miniapp-contract/ and commit it.');
    process.exit(1);
  }
  console.log('src/schema.ts matches openapi.json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
