import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configureTun, RecordingRunner, renderTunCommands } from '../src/index.js';

test('configureTun renders mtu, address, up through the runner', async () => {
  const r = new RecordingRunner();
  await configureTun({ name: 'pp0', address: '192.168.255.1', prefixLength: 24, mtu: 1420 }, r);
  assert.deepEqual(r.commands, [
    'ip link set dev pp0 mtu 1420',
    'ip addr replace 192.168.255.1/24 dev pp0',
    'ip link set dev pp0 up',
  ]);
});

test('configureTun: IPv6 and up=false', async () => {
  const r = new RecordingRunner();
  await configureTun({ name: 'pp6', address: 'fd00::1', prefixLength: 64, mtu: 1280, up: false }, r);
  assert.deepEqual(r.commands, ['ip -6 link set dev pp6 mtu 1280', 'ip -6 addr replace fd00::1/64 dev pp6']);
});

test('configureTun is idempotent: same config, same commands', () => {
  const cfg = { name: 'pp0', address: '10.0.0.1', prefixLength: 30, mtu: 1500 };
  assert.deepEqual(renderTunCommands(cfg), renderTunCommands(cfg));
  assert.ok(
    renderTunCommands(cfg).every((a) => !a.includes('add')),
    'uses replace, never add',
  );
});

test('configureTun rejects bad input before running anything', async () => {
  const bad = [
    { name: 'pp0; rm -rf /', address: '10.0.0.1', prefixLength: 24, mtu: 1500 },
    { name: 'averyveryverylongname', address: '10.0.0.1', prefixLength: 24, mtu: 1500 },
    { name: 'pp0', address: '10.0.0.300', prefixLength: 24, mtu: 1500 },
    { name: 'pp0', address: '10.0.0.1', prefixLength: 33, mtu: 1500 },
    { name: 'pp0', address: '10.0.0.1', prefixLength: 24, mtu: 40 },
    { name: 'pp0', address: 'fd00::1', prefixLength: 64, mtu: 1000 },
  ];
  for (const cfg of bad) {
    const r = new RecordingRunner();
    await assert.rejects(configureTun(cfg, r), (e: any) => e.code === 'PP_ERR_TUN_INVALID_CONFIG');
    assert.deepEqual(r.commands, []);
  }
});
