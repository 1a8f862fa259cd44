// The root bin/ wrappers make `pocketproxy` and `pocketproxy-agent` callable by name, as the README and
// docs/operations.md write them: from any directory with bin/ on PATH, and through a symlink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin', import.meta.url));

function run(cmd: string, dirs: string[]) {
  return spawnSync(cmd, ['--help'], {
    cwd: tmpdir(),
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '', PATH: [...dirs, process.env.PATH].join(delimiter) },
    timeout: 60_000,
  });
}

test('pocketproxy and pocketproxy-agent run by name with bin/ on PATH, from any directory', () => {
  const server = run('pocketproxy', [BIN]);
  assert.equal(server.status, 0, server.stderr);
  assert.match(server.stdout, /Usage: pocketproxy <command>/);
  const agent = run('pocketproxy-agent', [BIN]);
  assert.equal(agent.status, 0, agent.stderr);
  assert.match(agent.stdout, /Usage: pocketproxy-agent <command>/);
});

test('the wrappers work through a symlink (ln -s …/bin/pocketproxy /usr/local/bin/)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pp-bin-'));
  try {
    symlinkSync(join(BIN, 'pocketproxy'), join(dir, 'pocketproxy'));
    symlinkSync(join(BIN, 'pocketproxy-agent'), join(dir, 'pocketproxy-agent'));
    assert.match(run('pocketproxy', [dir]).stdout, /Usage: pocketproxy <command>/);
    assert.match(run('pocketproxy-agent', [dir]).stdout, /Usage: pocketproxy-agent <command>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
