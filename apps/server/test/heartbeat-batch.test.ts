// Heartbeats arriving together share one statement; a device heartbeating twice at once is carried by two
// batches; every caller gets its own device's answer, commands included.
import assert from 'node:assert/strict';
import { pairDevice } from './harness.js';
import { perBackend } from './api.assert.js';

perBackend('heartbeat group commit', ({ ts, test }) => {
  test('300 concurrent heartbeats of 100 devices: all answered, far fewer statements, commands to the right device', async () => {
    const devices: { id: string; token: string }[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await ts().call('POST', '/api/devices', { name: `batch-${i}` });
      assert.equal(r.status, 201, r.body);
      devices.push({ id: r.json.device.id, token: r.json.auth_token });
    }
    const target = devices[42]!;
    const cmd = await ts().call('POST', `/api/devices/${target.id}/commands`, { type: 'reboot' });
    assert.equal(cmd.status, 201);
    const before = { ...ts().sys.ctx.heartbeats.stats };
    const calls = [];
    for (let round = 0; round < 3; round++) {
      for (const [i, d] of devices.entries()) {
        calls.push(
          ts()
            .call(
              'POST',
              `/api/devices/${d.id}/heartbeat`,
              { metrics: { battery: i % 101, carrier: `c${round}` } },
              { authorization: `Bearer ${d.token}` },
            )
            .then((r) => ({ r, d })),
        );
      }
    }
    const results = await Promise.all(calls);
    for (const { r } of results) assert.equal(r.status, 200, r.body);
    const delivered = results.filter(({ r }) => r.json.commands.length > 0);
    assert.equal(delivered.length, 1, 'the command went out exactly once');
    assert.equal(delivered[0]!.d.id, target.id);
    assert.equal(delivered[0]!.r.json.commands[0].id, cmd.json.id);
    const stats = ts().sys.ctx.heartbeats.stats;
    assert.equal(stats.heartbeats - before.heartbeats, 300);
    assert.ok(
      stats.batches - before.batches < 150,
      `batched: ${stats.batches - before.batches} statements for 300 heartbeats`,
    );
    const d7 = await ts().call('GET', `/api/devices/${devices[7]!.id}`);
    assert.equal(d7.json.metrics.battery, 7);
    assert.equal(d7.json.status, 'online');
  });

  test('an unknown device in a batch answers 404 without failing the others', async () => {
    const d = await pairDevice(ts());
    await ts().call('DELETE', `/api/devices/${d.id}`);
    const other = await pairDevice(ts());
    const [gone, ok] = await Promise.all([
      ts().sys.ctx.heartbeats.submit(d.id, {}, null),
      ts().call('POST', `/api/devices/${other.id}/heartbeat`, {}, { authorization: `Bearer ${other.token}` }),
    ]);
    assert.equal(gone.old_status, null);
    assert.equal(ok.status, 200);
  });
});
