// A device's relay hears of it as soon as the API knows: pairing, registration by hand, a move to
// another relay (both relays) and deletion push POST /sync {device_id} after commit, so the relay
// refreshes its peer list before the device's first initiation. Never fails the API call, and waits
// for the relay at most ~1 s. The relay's one-device peer check (GET /api/internal/tunnel/peers?device_id=).
import assert from 'node:assert/strict';
import { pairDevice } from './harness.js';
import { internal, perBackend } from './api.assert.js';

perBackend('devices announced to their relay', ({ ts, test }) => {
  const pushUrlOf = async (deviceId: string) =>
    (
      await ts().db.query<{ push_url: string }>(
        'SELECT r.push_url FROM devices d JOIN relays r ON r.id = d.relay_id WHERE d.id = $1',
        [deviceId],
      )
    ).rows[0]!.push_url;

  test('pairing syncs the new device to its relay, after commit', async () => {
    ts().push.takeSynced();
    let seen: string | undefined;
    const orig = ts().push.sync.bind(ts().push);
    ts().push.sync = async (url, id) => {
      seen = (await ts().db.query<{ id: string }>('SELECT id FROM devices WHERE id = $1', [id])).rows[0]?.id;
      return orig(url, id);
    };
    try {
      const d = await pairDevice(ts(), 'announce-1');
      assert.deepEqual(ts().push.synced, [{ pushUrl: await pushUrlOf(d.id), deviceId: d.id }]);
      assert.equal(seen, d.id, 'the relay reads a committed row');
    } finally {
      ts().push.sync = orig;
      ts().push.takeSynced();
    }
  });

  test('a relay that is down, refuses or hangs never fails the pairing; a hang delays it at most ~1 s', async () => {
    for (const answer of [new Error('connect ECONNREFUSED'), false]) {
      ts().push.syncAnswer = answer;
      const d = await pairDevice(ts());
      assert.deepEqual(ts().push.takeSynced(), [d.id]);
    }
    ts().push.syncAnswer = true;
    const orig = ts().push.sync.bind(ts().push);
    let finished = false;
    ts().push.sync = async (url, id) => {
      await new Promise((r) => setTimeout(r, 3_000)); // a hang longer than the ~1 s the pairing waits for it
      finished = true;
      return orig(url, id);
    };
    try {
      const t0 = Date.now();
      await pairDevice(ts());
      const ms = Date.now() - t0;
      // The order of events, not a wall-clock bound (a loaded host stretches both): it waited for the relay a
      // while, then answered while the relay still hung.
      assert.ok(ms >= 900, `pairing answered after ${ms} ms`);
      assert.equal(finished, false, 'answered before the relay did');
      const until = Date.now() + 10_000;
      while (!finished && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.equal(finished, true, 'the sync still completes on its own');
    } finally {
      ts().push.sync = orig;
      ts().push.takeSynced();
    }
  });

  test('registering a device by hand syncs it; renaming does not; moving it syncs the new relay and the old one', async () => {
    ts().push.takeSynced();
    const created = await ts().call('POST', '/api/devices', { name: 'announce-by-hand' });
    assert.equal(created.status, 201, created.body);
    const id = created.json.device.id as string;
    const local = await pushUrlOf(id);
    assert.deepEqual(ts().push.synced, [{ pushUrl: local, deviceId: id }]);
    ts().push.takeSynced();
    assert.equal((await ts().call('PATCH', `/api/devices/${id}`, { name: 'announce-renamed' })).status, 200);
    assert.deepEqual(ts().push.takeSynced(), []);
    const other = await ts().call('POST', '/api/relays', {
      name: 'announce-eu',
      host: 'eu.example.net',
      push_url: 'http://10.9.8.7:8081',
    });
    assert.equal(other.status, 201, other.body);
    assert.equal((await ts().call('PATCH', `/api/devices/${id}`, { relay_id: other.json.id })).status, 200);
    const got = ts()
      .push.synced.map((s) => `${s.pushUrl} ${s.deviceId}`)
      .sort();
    assert.deepEqual(got, [`${local} ${id}`, `http://10.9.8.7:8081 ${id}`].sort());
    ts().push.takeSynced();
    // Same relay again: not a move.
    assert.equal((await ts().call('PATCH', `/api/devices/${id}`, { relay_id: other.json.id })).status, 200);
    assert.deepEqual(ts().push.takeSynced(), []);
    // Deleting: the relay it was on (looked up before the row goes).
    assert.equal((await ts().call('DELETE', `/api/devices/${id}`)).status, 204);
    assert.deepEqual(ts().push.synced, [{ pushUrl: 'http://10.9.8.7:8081', deviceId: id }]);
    ts().push.takeSynced();
  });

  test('GET /api/internal/tunnel/peers?device_id=: that device only, and only on its own relay', async () => {
    const a = await pairDevice(ts(), 'announce-peer-a');
    const b = await pairDevice(ts(), 'announce-peer-b');
    const relayId = (await ts().call('GET', `/api/devices/${a.id}`)).json.relay_id as string;
    const all = await ts().call('GET', `/api/internal/tunnel/peers?relay_id=${relayId}`, undefined, internal(ts()));
    assert.ok(all.json.items.length >= 2);
    const one = await ts().call(
      'GET',
      `/api/internal/tunnel/peers?relay_id=${relayId}&device_id=${b.id}`,
      undefined,
      internal(ts()),
    );
    assert.equal(one.status, 200, one.body);
    assert.deepEqual(
      one.json.items.map((i: { device_id: string }) => i.device_id),
      [b.id],
    );
    assert.deepEqual(Object.keys(one.json.items[0]).sort(), ['device_id', 'psk', 'public_key', 'vpn_ip']);
    const elsewhere = await ts().call('POST', '/api/relays', { name: 'announce-us', host: 'us.example.net' });
    const none = await ts().call(
      'GET',
      `/api/internal/tunnel/peers?relay_id=${elsewhere.json.id}&device_id=${b.id}`,
      undefined,
      internal(ts()),
    );
    assert.deepEqual(none.json.items, []);
    assert.equal(
      (
        await ts().call(
          'GET',
          `/api/internal/tunnel/peers?relay_id=${relayId}&device_id=nope`,
          undefined,
          internal(ts()),
        )
      ).status,
      400,
    );
    ts().push.takeSynced();
  });
});
