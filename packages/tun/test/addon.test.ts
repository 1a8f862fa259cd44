import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADDON_PATH, addonAvailable } from '../src/index.js';
import { loadAddon } from '../src/native.js';

test('the native addon is built and exports its three entry points', () => {
  assert.ok(addonAvailable(), `addon missing at ${ADDON_PATH}: run npm run build -w @pocketproxy/tun`);
  const addon = loadAddon();
  assert.equal(typeof addon.TunQueue, 'function');
  assert.equal(typeof addon.UdpBatch, 'function');
  assert.equal(typeof addon.getOriginalDst, 'function');
  assert.equal(loadAddon(), addon, 'loaded once');
});

test('native errors carry errno code and syscall', () => {
  const addon = loadAddon();
  assert.throws(
    () => addon.getOriginalDst(987654),
    (e: any) => e.code === 'EBADF' && e.syscall === 'getsockname',
  );
});
