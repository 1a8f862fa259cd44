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
