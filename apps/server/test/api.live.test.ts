// When a change is in force: a connection is "live" once its relay answered the push for a connected
// device (or the device reconnected and got its state) and the device reported the credentials
// version it applied; "pending" before. And the transport a device's tunnel rides.
import assert from 'node:assert/strict';
import { pairDevice } from './harness.js';
import { assertProblem, dev, internal, perBackend } from './api.assert.js';

perBackend('live state of connections, device transport', ({ ts, test }) => {
  const version = async (d: { id: string; token: string }) =>
    (await ts().call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token))).json.version as string;
  const live = async (id: string) => (await ts().call('GET', `/api/connections/${id}`)).json.live;

  test('pending until the relay applied it for a connected device and the device reported the current version; a change makes it pending again', async () => {
    const d = await pairDevice(ts(), 'live-1');
    const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
    assert.equal(c.live.state, 'pending', 'the device is offline: nothing is in force');
    // The device connects: the relay gets its whole state with the vpn/connected answer.
    const vpnIp = (await ts().call('GET', `/api/devices/${d.id}`)).json.vpn_ip;
    assert.equal(
      (
        await ts().call(
          'POST',
          '/api/internal/vpn/connected',
          { device_id: d.id, vpn_ip: vpnIp, endpoint: '198.18.1.2:40000' },
          internal(ts()),
        )
      ).status,
      200,
    );
    let l = await live(c.id);
    assert.equal(l.state, 'pending');
    assert.ok(l.relay_applied_at, 'in force on the relay');
    assert.equal(l.device_applied_at, null);
    // The agent fetched and applied its credentials.
    const v1 = await version(d);
    const applied = await ts().call('POST', `/api/devices/${d.id}/credentials/applied`, { version: v1 }, dev(d.token));
    assert.equal(applied.status, 200, applied.body);
    assert.deepEqual(applied.json, { current: true });
    l = await live(c.id);
    assert.equal(l.state, 'live');
    // A change: pending until both sides have it again.
    ts().clock.advance(1_000);
    ts().push.syncAnswer = false; // relay does not confirm (say, the device dropped meanwhile)
    await ts().call('PATCH', `/api/connections/${c.id}`, { password: 'another-password-1234' });
    l = await live(c.id);
    assert.equal(l.state, 'pending');
    // The agent reports the version it had before the change: nothing is marked.
    assert.deepEqual(
      (await ts().call('POST', `/api/devices/${d.id}/credentials/applied`, { version: v1 }, dev(d.token))).json,
      { current: false },
    );
    assert.equal((await live(c.id)).state, 'pending');
    // The relay confirms the next push; the device reports the new version.
    ts().push.syncAnswer = true;
    ts().clock.advance(1_000);
    await ts().call('PATCH', `/api/connections/${c.id}`, { max_connections: 5 });
    assert.ok(new Date((await live(c.id)).relay_applied_at).getTime() >= ts().clock.now().getTime());
    assert.deepEqual(
      (await ts().call('POST', `/api/devices/${d.id}/credentials/applied`, { version: await version(d) }, dev(d.token)))
        .json,
      { current: true },
    );
    assert.equal((await live(c.id)).state, 'live');
    // The device goes offline: not live any more.
    await ts().call('POST', '/api/internal/vpn/disconnected', { device_id: d.id, reason: 'dead' }, internal(ts()));
    assert.equal((await live(c.id)).state, 'pending');
  });

  test('applied: device auth only, validated, nothing stored on bad input', async () => {
    const d = await pairDevice(ts(), 'live-2');
    const other = await pairDevice(ts(), 'live-3');
    // Another device's token is not this device's; an admin's JWT is no device credential at all.
    assertProblem(
      await ts().call('POST', `/api/devices/${d.id}/credentials/applied`, { version: 'x' }, dev(other.token)),
      403,
    );
    assertProblem(await ts().call('POST', `/api/devices/${d.id}/credentials/applied`, { version: 'x' }), 401);
    assertProblem(
      await ts().call(
        'POST',
        `/api/devices/${d.id}/credentials/applied`,
        { version: 'x' },
        { authorization: 'Bearer nope' },
      ),
      401,
    );
    for (const bad of [{}, { version: '' }, { version: 5 }, { version: 'x'.repeat(201) }, { version: 'x', extra: 1 }]) {
      assertProblem(
        await ts().call('POST', `/api/devices/${d.id}/credentials/applied`, bad, dev(d.token)),
        400,
        'PP_ERR_API_VALIDATION',
      );
    }
  });

  test('tunnel_transport: from the relay when the device connects, then from its heartbeats', async () => {
    const d = await pairDevice(ts(), 'transport-1');
    const get = async () => (await ts().call('GET', `/api/devices/${d.id}`)).json.tunnel_transport;
    assert.equal(await get(), null);
    const vpnIp = (await ts().call('GET', `/api/devices/${d.id}`)).json.vpn_ip;
    await ts().call(
      'POST',
      '/api/internal/vpn/connected',
      { device_id: d.id, vpn_ip: vpnIp, endpoint: 'tcp/198.18.1.2:41000' },
      internal(ts()),
    );
    assert.equal(await get(), 'tcp');
    assert.equal(
      (await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { tunnel_transport: 'udp' }, dev(d.token))).status,
      200,
    );
    assert.equal(await get(), 'udp');
    assert.equal((await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))).status, 200);
    assert.equal(await get(), 'udp', 'a heartbeat without it keeps the last');
    assertProblem(
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { tunnel_transport: 'quic' }, dev(d.token)),
      400,
      'PP_ERR_API_VALIDATION',
    );
  });
});

perBackend('devices learn of tunnel changes', ({ ts, test }) => {
  const tunnelChanged = () => ts().push.sent.filter((s) => (s.message as { type?: string }).type === 'tunnel_changed');

  test("a relay's address, port or key changed: its connected devices are told (through it); other edits tell nobody", async () => {
    const d = await pairDevice(ts(), 'moved-relay-1');
    const idle = await pairDevice(ts(), 'moved-relay-2');
    const dev = (await ts().call('GET', `/api/devices/${d.id}`)).json;
    await ts().call('POST', '/api/internal/vpn/connected', { device_id: d.id, vpn_ip: dev.vpn_ip }, internal(ts()));
    ts().push.sent = [];
    const relay = (await ts().call('GET', `/api/relays/${dev.relay_id}`)).json;
    assert.equal((await ts().call('PATCH', `/api/relays/${dev.relay_id}`, { enabled: true })).status, 200);
    assert.deepEqual(tunnelChanged(), [], 'nothing the devices dial changed');
    const after = (await ts().call('GET', `/api/relays/${dev.relay_id}`)).json;
    assert.deepEqual(
      [after.tunnel_port, after.push_url],
      [relay.tunnel_port, relay.push_url],
      'a PATCH leaves the fields it does not name alone',
    );
    assert.equal((await ts().call('PATCH', `/api/relays/${dev.relay_id}`, { host: relay.host })).status, 200);
    assert.deepEqual(tunnelChanged(), [], 'the same address again is no change');
    assert.equal((await ts().call('PATCH', `/api/relays/${dev.relay_id}`, { host: 'relay2.example.net' })).status, 200);
    assert.deepEqual(
      tunnelChanged().map((s) => [s.deviceId, s.pushUrl]),
      [[d.id, relay.push_url]],
      'only the connected device, through its relay',
    );
    assert.ok(!tunnelChanged().some((s) => s.deviceId === idle.id));
  });

  test('a device moved to another relay is told through the old one, and both relays are synced', async () => {
    const d = await pairDevice(ts(), 'moved-dev');
    const old = (await ts().call('GET', `/api/devices/${d.id}`)).json;
    const oldUrl = (await ts().call('GET', `/api/relays/${old.relay_id}`)).json.push_url;
    const other = await ts().call('POST', '/api/relays', {
      name: 'live-eu',
      host: 'eu.example.net',
      push_url: 'http://10.9.8.6:8081',
    });
    ts().push.sent = [];
    ts().push.takeSynced();
    assert.equal((await ts().call('PATCH', `/api/devices/${d.id}`, { relay_id: other.json.id })).status, 200);
    assert.deepEqual(
      tunnelChanged().map((s) => [s.deviceId, s.pushUrl]),
      [[d.id, oldUrl]],
    );
    assert.deepEqual(
      ts()
        .push.synced.map((s) => s.pushUrl)
        .sort(),
      [oldUrl, 'http://10.9.8.6:8081'].sort(),
    );
  });
});
