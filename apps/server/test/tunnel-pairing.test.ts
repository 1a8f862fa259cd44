// A device the relay does not know yet: the API's push (POST /sync) refreshes the peer list so its
// first initiation is answered; when the push is missed, the relay keeps the initiation and answers
// that same one after the refresh it triggers. Also deletion by push, the peer-list fetch rules
// (registration.ts) and the bounds of the kept initiations. Loopback only (FakeTun, fake API over HTTP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { generateKeyPair, generatePsk, encodeKey } from '@pocketproxy/protocol';
import {
  connectDevice,
  makeDevice,
  sleep,
  startHarness,
  TOKEN,
  waitFor,
  type FakeDeviceRecord,
} from './tunnel/helpers.js';
import { createRegistration } from '../src/tunnel/registration.js';
import { DeviceTable } from '../src/tunnel/devices.js';
import { parseSubnet } from '../src/tunnel/ipv4.js';
import { LogLimiter } from '../src/tunnel/limits.js';
import { HeldInitiations } from '../src/tunnel/held-initiations.js';
import type { TunnelPeer } from '../src/tunnel/api-client.js';

const push = async (port: number, path: string, body: unknown) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};

const responses = (raw: Buffer[]) => raw.filter((f) => f[0] === 2).length;

test('a missed push: the first initiation of an unknown key is kept and answered after the peer refresh it triggers', async () => {
  const known = makeDevice(21);
  const fresh = makeDevice(22);
  const h = await startHarness([known]);
  try {
    // Paired after the relay loaded its list, and the API's push never arrived.
    h.api.devices.push(fresh);
    const d = await h.device(fresh);
    const t0 = Date.now();
    const [init] = d.initiator.tick(Date.now());
    d.sendRaw(init!); // one initiation, no retry
    await waitFor('established on the first initiation', () => d.established, 3000);
    const ms = Date.now() - t0;
    assert.equal(responses(d.raw), 1);
    const st = h.tunnel.status();
    assert.equal(st.drops.unknown_peer, 1);
    assert.equal(st.initiations_replayed, 1);
    assert.equal(st.initiations_held, 0);
    await waitFor('forwarded', () => h.tunnel.devices.byId.get(fresh.device_id)?.reported);
    // The same initiation again (a duplicate, or a replay by someone who saw it): no second answer.
    d.sendRaw(init!);
    await waitFor('replayed_initiation drop', () => h.tunnel.status().drops.replayed_initiation === 1);
    assert.equal(responses(d.raw), 1);
    console.error(
      `tunnel-pairing: first initiation of an unknown key answered after ${ms} ms (kept, peer refresh, replay)`,
    );
  } finally {
    await h.close();
  }
});

test('a key the API does not know either: kept for at most ttl (5 s), never answered', async () => {
  const h = await startHarness([makeDevice(23)]);
  try {
    const stranger: FakeDeviceRecord = { ...makeDevice(24), keys: generateKeyPair(), psk: generatePsk() };
    const d = await h.device(stranger);
    for (const f of d.initiator.tick(Date.now())) d.sendRaw(f);
    await waitFor('kept', () => h.tunnel.status().initiations_held === 1);
    await h.tunnel.refreshPeers();
    await sleep(100);
    assert.equal(responses(d.raw), 0);
    assert.equal(h.tunnel.status().initiations_held, 1, 'still unknown: still kept');
    // Kept at most ttl (5 s): after that a refresh forgets it.
    h.clock.offset += 6_000;
    await h.tunnel.refreshPeers();
    assert.equal(h.tunnel.status().initiations_held, 0);
  } finally {
    await h.close();
  }
});

test('POST /sync of a new device refreshes the peer list at once: its very first initiation is answered directly', async () => {
  const known = makeDevice(25);
  const fresh = makeDevice(26);
  const h = await startHarness([known]);
  try {
    h.api.devices.push(fresh);
    const r = await push(h.tunnel.addresses.push, '/sync', { device_id: fresh.device_id });
    assert.deepEqual(r.body, { ok: true, connected: false });
    assert.ok(h.tunnel.devices.byId.get(fresh.device_id), 'known once the push was answered');
    const d = await h.device(fresh);
    for (const f of d.initiator.tick(Date.now())) d.sendRaw(f);
    await waitFor('established', () => d.established, 2000);
    assert.equal(h.tunnel.status().drops.unknown_peer ?? 0, 0, 'never dropped as unknown');
    // A push for a device this relay does not have and still does not have: no full refresh, no change.
    const before = h.tunnel.devices.byId.size;
    assert.deepEqual((await push(h.tunnel.addresses.push, '/sync', { device_id: 'dev_elsewhere' })).body, {
      ok: true,
      connected: false,
    });
    assert.equal(h.tunnel.devices.byId.size, before);
  } finally {
    await h.close();
  }
});

test('POST /sync of a deleted (or moved away) device ends its session at once', async () => {
  const stays = makeDevice(27);
  const gone = makeDevice(28);
  const h = await startHarness([stays, gone]);
  try {
    await connectDevice(h, stays);
    await connectDevice(h, gone);
    assert.equal(h.tunnel.status().devices_connected, 2);
    h.api.devices.splice(h.api.devices.indexOf(gone), 1);
    const r = await push(h.tunnel.addresses.push, '/sync', { device_id: gone.device_id });
    assert.deepEqual(r.body, { ok: true, connected: false });
    assert.equal(h.tunnel.devices.byId.get(gone.device_id), undefined);
    assert.equal(h.tunnel.status().devices_connected, 1);
    await waitFor('vpn/disconnected', () =>
      h.api
        .callsTo('/api/internal/vpn/disconnected')
        .some((c) => c.body.device_id === gone.device_id && c.body.reason === 'removed'),
    );
    // A connection change of the device that stays: no peer change, still connected.
    assert.deepEqual((await push(h.tunnel.addresses.push, '/sync', { device_id: stays.device_id })).body, {
      ok: true,
      connected: true,
    });
  } finally {
    await h.close();
  }
});

test('POST /sync of a device re-keyed under the same id: the old session ends, the new key handshakes at once', async () => {
  const rec = makeDevice(29);
  const h = await startHarness([rec]);
  try {
    const old = await connectDevice(h, rec);
    const rekeyed: FakeDeviceRecord = { ...rec, keys: generateKeyPair() };
    h.api.devices[h.api.devices.indexOf(rec)] = rekeyed;
    assert.deepEqual((await push(h.tunnel.addresses.push, '/sync', { device_id: rec.device_id })).body, {
      ok: true,
      connected: false,
    });
    assert.ok(h.tunnel.devices.byId.get(rec.device_id)!.publicKey.equals(rekeyed.keys.publicKey));
    old.close();
    const d = await h.device(rekeyed);
    for (const f of d.initiator.tick(Date.now())) d.sendRaw(f);
    await waitFor('established with the new key', () => d.established, 2000);
  } finally {
    await h.close();
  }
});

// ---- registration.ts on its own: which fetches happen --------------------------------------

function registrationWith(peers: () => TunnelPeer[], gapMs: number) {
  const calls: (string | undefined)[] = [];
  let release: (() => void) | undefined;
  let hold = false;
  const devices = new DeviceTable(parseSubnet('192.168.255.0/24'));
  const removed: string[] = [];
  const log = pino({ level: 'silent' });
  let loaded = 0;
  const reg = createRegistration({
    now: Date.now,
    log,
    devLog: () => log,
    logLimit: new LogLimiter(),
    api: {
      register: async () => ({ relay_id: 'rly_x' }),
      peers: async (_rid, deviceId) => {
        calls.push(deviceId);
        if (hold && deviceId === undefined) await new Promise<void>((r) => (release = r));
        const all = peers();
        return deviceId === undefined ? all : all.filter((p) => p.deviceId === deviceId);
      },
    },
    relay: {
      name: 'x',
      host: 'h',
      tunnel_port: 1,
      push_url: 'http://h',
      public_key: encodeKey(generateKeyPair().publicKey),
      max_lanes: 16,
    },
    devices,
    responder: { removePeer: (id) => void removed.push(id) },
    intervals: { peersMinGapMs: gapMs, retryMaxMs: 100 },
    isStopped: () => false,
    onPeersLoaded: () => void loaded++,
  });
  return {
    reg,
    calls,
    devices,
    removed,
    loads: () => loaded,
    holdFetches: (on: boolean) => {
      hold = on;
    },
    release: () => release?.(),
  };
}

const peer = (n: number): TunnelPeer => {
  const d = makeDevice(n);
  return { deviceId: d.device_id, publicKey: d.keys.publicKey, psk: d.psk, vpnIp: d.vpn_ip };
};

test('registration: unknown keys refresh at most every gap, a request inside the gap is served at its end', async () => {
  const list = [peer(1)];
  const r = registrationWith(() => list, 300);
  await r.reg.register();
  await r.reg.refreshPeers();
  assert.equal(r.calls.length, 1);
  assert.equal(r.loads(), 1);
  const t0 = Date.now();
  await r.reg.requestPeers('unknown key'); // inside the gap: deferred
  await r.reg.requestPeers('unknown key'); // ...once
  assert.equal(r.calls.length, 1);
  await waitFor('deferred fetch', () => r.calls.length === 2, 2000);
  assert.ok(Date.now() - t0 >= 250, `deferred to the gap's end (${Date.now() - t0} ms)`);
  await sleep(400);
  assert.equal(r.calls.length, 2, 'one deferred fetch, not one per request');
});

test('registration: a fresh refresh while a fetch is under way gets one more fetch after it, shared', async () => {
  const list = [peer(1)];
  const r = registrationWith(() => list, 10_000);
  await r.reg.register();
  r.holdFetches(true);
  const first = r.reg.refreshPeers();
  await waitFor('first fetch asked', () => r.calls.length === 1);
  list.push(peer(2)); // committed after the first fetch was answered by the API (held here)
  const a = r.reg.refreshPeers({ fresh: true });
  const b = r.reg.refreshPeers({ fresh: true });
  const plain = r.reg.refreshPeers();
  assert.equal(plain, first, 'a plain refresh shares the fetch under way');
  r.holdFetches(false);
  r.release();
  await Promise.all([first, a, b]);
  assert.equal(r.calls.filter((c) => c === undefined).length, 2, 'one follow-up for both fresh requests');
  assert.ok(r.devices.byId.get('dev_2'));
});

test('registration: syncPeer refreshes only when the list has the device wrong', async () => {
  const list = [peer(1), peer(2)];
  const r = registrationWith(() => list, 10_000);
  await r.reg.register();
  await r.reg.refreshPeers();
  const full = () => r.calls.filter((c) => c === undefined).length;
  assert.equal(await r.reg.syncPeer('dev_1'), false, 'unchanged');
  assert.equal(await r.reg.syncPeer('dev_9'), false, 'neither here nor in the API');
  assert.equal(full(), 1);
  list.push(peer(3));
  assert.equal(await r.reg.syncPeer('dev_3'), true, 'new');
  assert.ok(r.devices.byId.get('dev_3'));
  list[0] = { ...list[0]!, publicKey: generateKeyPair().publicKey };
  assert.equal(await r.reg.syncPeer('dev_1'), true, 're-keyed');
  assert.deepEqual(r.removed, ['dev_1']);
  list.splice(1, 1);
  assert.equal(await r.reg.syncPeer('dev_2'), true, 'deleted');
  assert.deepEqual(r.removed, ['dev_1', 'dev_2']);
  assert.equal(full(), 4);
});

test('held initiations: newest per endpoint, at most max endpoints, at most ttl', () => {
  const h = new HeldInitiations(3, 1_000);
  const key = generateKeyPair().publicKey;
  const ep = (port: number) => ({ kind: 'udp' as const, address: '203.0.113.1', port });
  const frame = (b: number) => Buffer.alloc(148, b);
  h.hold(frame(1), ep(1), key, 0);
  h.hold(frame(2), ep(1), key, 10); // same endpoint: replaces
  assert.equal(h.size, 1);
  for (const p of [2, 3, 4]) h.hold(frame(p + 10), ep(p), key, 20);
  assert.equal(h.size, 3, 'bounded');
  const got = h.take(() => true, 500);
  assert.deepEqual(
    got.map((x) => (x.from as { port: number }).port).sort(),
    [2, 3, 4],
    'the oldest endpoint went first',
  );
  assert.equal(h.size, 0);
  // The receive buffer is reused by the socket: the kept frame is a copy.
  const buf = frame(7);
  h.hold(buf, ep(5), key, 1_000);
  buf.fill(0);
  assert.equal(h.take(() => false, 1_500).length, 0);
  assert.equal(h.size, 1, 'unknown keys stay until their ttl');
  assert.equal(h.take(() => true, 1_500)[0]!.frame[0], 7);
  h.hold(frame(8), ep(6), key, 2_000);
  assert.equal(h.take(() => true, 3_001).length, 0, 'older than ttl: forgotten');
  assert.equal(h.size, 0);
});
