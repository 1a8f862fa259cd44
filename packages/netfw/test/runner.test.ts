// The real runner against harmless local commands: stdin is piped, non-zero exit is a PPError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRunner } from '../src/index.js';

test('pipes stdin and returns stdout', async () => {
  const r = await createRunner().run('cat', [], 'table ip x {}\n');
  assert.equal(r.stdout, 'table ip x {}\n');
});

test('non-zero exit rejects with the stderr text', async () => {
  await assert.rejects(createRunner().run('sh', ['-c', 'echo boom >&2; exit 3']), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'PP_ERR_NETFW_COMMAND_FAILED');
    assert.match(e.message, /exit 3\): boom/);
    return true;
  });
});

test('a missing program rejects too', async () => {
  await assert.rejects(createRunner().run('/nonexistent/nft', []), { code: 'PP_ERR_NETFW_COMMAND_FAILED' });
});

test('a hung command is killed after the timeout', async () => {
  const t0 = Date.now();
  await assert.rejects(createRunner({ timeoutMs: 200 }).run('sleep', ['5']), /timed out/);
  assert.ok(Date.now() - t0 < 2000);
});

test('netns names are checked', () => {
  assert.throws(() => createRunner({ netns: 'a b' }), TypeError);
});
