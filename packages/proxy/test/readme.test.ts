// Keeps README's failure table in step with the registry (code, HTTP status).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PROXY_ERRORS } from '../src/index.js';

it('README documents every error code with its HTTP status', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const [code, spec] of Object.entries(PROXY_ERRORS)) {
    if (code === '__area') continue;
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} missing from README`);
    assert.ok(row.includes(`| ${(spec as { status: number }).status} |`), `${code} status differs in README`);
  }
});

it('imports only node built-ins, relative modules and @pocketproxy/errors (a protocol library)', async () => {
  const { readdirSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const root = new URL('../src/', import.meta.url).pathname;
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.ts')) files.push(p);
    }
  };
  walk(root);
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/from '([^']+)'/g)) {
      const spec = m[1]!;
      assert.ok(
        spec.startsWith('node:') || spec.startsWith('.') || spec === '@pocketproxy/errors',
        `${f} imports ${spec}`,
      );
    }
  }
});
