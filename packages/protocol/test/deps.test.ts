// The protocol library stays sans-IO and product-agnostic: it may import node:crypto and our error
// registry, nothing else (no sockets, no timers module, no database, no server app).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

test('src/ imports only node:crypto, @pocketproxy/errors and its own files', () => {
  const dir = new URL('../src/', import.meta.url);
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const src = readFileSync(new URL(f, dir), 'utf8');
    for (const m of src.matchAll(/\bfrom\s+'([^']+)'/g)) {
      const spec = m[1]!;
      assert.ok(
        spec.startsWith('./') || spec === 'node:crypto' || spec === '@pocketproxy/errors',
        `${f} imports ${spec}`,
      );
    }
    assert.ok(!/process\.env|setTimeout|setInterval/.test(src), `${f} must not read env or own timers`);
  }
});
