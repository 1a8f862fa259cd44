// The agent's TCP Fast Open switch (src/proxy/fastopen.ts) on a file standing in for the sysctl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enableFastOpenServer } from '../src/proxy/fastopen.js';

test('enableFastOpenServer sets the server bit and keeps the others; leaves a value that has it; reports why not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pp-tfo-'));
  const f = join(dir, 'tcp_fastopen');
  for (const [before, after] of [
    ['1\n', '3'],
    ['0', '2'],
    ['1025', '1027'],
  ] as const) {
    writeFileSync(f, before);
    assert.equal(enableFastOpenServer(f), 'on');
    assert.equal(readFileSync(f, 'utf8'), after);
  }
  writeFileSync(f, '3\n');
  assert.equal(enableFastOpenServer(f), 'on');
  assert.equal(readFileSync(f, 'utf8'), '3\n', 'already on: not written');
  writeFileSync(f, 'nonsense');
  assert.match(enableFastOpenServer(f), /unreadable value/);
  assert.equal(readFileSync(f, 'utf8'), 'nonsense');
  assert.match(enableFastOpenServer(join(dir, 'missing')), /ENOENT/);
});
