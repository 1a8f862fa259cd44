import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, pairDevice, skipUnlessBackend, startSystem, type TestSystem } from './harness.js';

for (const backend of BACKENDS) {
  describe(`API walk-through (${backend})`, () => {
    let ts: TestSystem;
    before(async (t) => {
      if (skipUnlessBackend(t as never, backend)) return;
      ts = await startSystem(backend);
    });
    after(async () => ts?.close());

    it('pairs a device, queues a command, delivers it in a heartbeat and records the result', async (t) => {
      if (skipUnlessBackend(t, backend)) return;
      const dev = await pairDevice(ts, 'phone-1');
      const hb0 = await ts.call(
        'POST',
        `/api/devices/${dev.id}/heartbeat`,
        { metrics: { battery: 80 }, public_ip: '198.18.1.2' },
        { authorization: `Bearer ${dev.token}` },
      );
      assert.equal(hb0.status, 200, hb0.body);
      assert.deepEqual(hb0.json.commands, []);
      const cmd = await ts.call('POST', `/api/devices/${dev.id}/commands`, { type: 'rotate_ip' });
      assert.equal(cmd.status, 201, cmd.body);
      assert.equal(cmd.json.status, 'pending');
      const hb1 = await ts.call(
        'POST',
        `/api/devices/${dev.id}/heartbeat`,
        {},
        { authorization: `Bearer ${dev.token}` },
      );
      assert.equal(hb1.json.commands.length, 1);
      assert.equal(hb1.json.commands[0].id, cmd.json.id);
      const res = await ts.call(
        'POST',
        `/api/devices/${dev.id}/commands/${cmd.json.id}/result`,
        { status: 'succeeded', result: { old_ip: '198.18.1.2', new_ip: '198.18.1.3' } },
        { authorization: `Bearer ${dev.token}` },
      );
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.status, 'succeeded');
      const hist = await ts.call('GET', `/api/devices/${dev.id}/ip-history`);
      assert.deepEqual(
        hist.json.items.map((h: { new_ip: string }) => h.new_ip),
        ['198.18.1.3', '198.18.1.2'],
      );
      const d = await ts.call('GET', `/api/devices/${dev.id}`);
      assert.equal(d.json.current_ip, '198.18.1.3');
      assert.equal(d.json.status, 'online');
      assert.equal(d.json.metrics.battery, 80);
    });
  });
}
