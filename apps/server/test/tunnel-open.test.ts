// The relay's native open routes (datapath.ts): when the data path gives a device's session a route
// in the UDP socket's open path, what it hands over, and when it takes it away. A recording stand-in
// for the socket's OpenPath (the C++ side is packages/tun test/open.lab.test.ts): a route must always
// be exactly what JS would accept from that device — its current session, its current UDP endpoint,
// its own address as the inner source — or absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenPath, OpenState } from '@pocketproxy/tun';
import { handshakeRtts } from '../src/tunnel/tunnel.js';
import { connectDevice, makeDevice, startHarness, udpPacket, waitFor } from './tunnel/helpers.js';

function recordingOpen() {
  const calls: string[] = [];
  const routes = new Map<number, { state: OpenState; address: string; port: number; innerSrc?: number }>();
  const open: OpenPath = {
    set(state, address, port, innerSrc) {
      calls.push(`set ${port}`);
      routes.set(state.index, { state, address, port, innerSrc });
    },
    delete(index) {
      calls.push('delete');
      return routes.delete(index);
    },
    clear() {
      routes.clear();
    },
  };
  return { open, calls, routes };
}

// 192.168.255.2 as the device table keys it.
const VPN2 = ((192 << 24) | (168 << 16) | (255 << 8) | 2) >>> 0;

async function withDevice(
  body: (t: {
    h: Awaited<ReturnType<typeof startHarness>>;
    r: ReturnType<typeof recordingOpen>;
    d: Awaited<ReturnType<typeof connectDevice>>;
  }) => Promise<void>,
): Promise<void> {
  const rec = makeDevice(1);
  const r = recordingOpen();
  const h = await startHarness([rec], { openPath: r.open });
  try {
    await body({ h, r, d: await connectDevice(h, rec) });
  } finally {
    await h.close();
  }
}

const only = <T>(m: Map<number, T>): T => {
  assert.equal(m.size, 1, 'exactly one route');
  return [...m.values()][0]!;
};

test("open routes: set after the first packet JS opens from a device, with that session's key, index and replay memory", async () => {
  await withDevice(async ({ h, r, d }) => {
    assert.deepEqual(r.calls, [], 'no route for a handshake and its confirming keepalive');
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'first'));
    await waitFor('route', () => r.routes.size === 1);
    const route = only(r.routes);
    assert.equal(route.address, '127.0.0.1');
    assert.equal(route.innerSrc, VPN2, 'only the device address may be the inner source');
    assert.equal(h.tun.written.length, 1);
    // The state is the session's: the device's next frame carries this index and opens with this key.
    const st = route.state;
    const f = d.initiator.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'next'), Date.now())!;
    assert.equal(f.readUInt32LE(4), st.index);
    const c = Number(f.readBigUInt64LE(8));
    const key = st.key as { open(c: number, s: Uint8Array, d: Uint8Array, o: number): number };
    assert.ok(key.open(c, f.subarray(16), Buffer.alloc(f.length - 32), 0) > 0);
    assert.equal(st.cell[0], c - 1, "the cell's top is the highest counter JS accepted");
    assert.equal(st.cell[1], 2, 'received: the confirming keepalive and the first packet');
    // The window is shared: a counter the native path marked (as udp_open.cc does) is a replay for JS.
    st.bits[Math.floor(c / 32) % st.bits.length]! |= 1 << (c & 31);
    st.cell[0] = c;
    const replays = h.tunnel.status().drops.replay ?? 0;
    d.sendRaw(f);
    await waitFor('replay drop', () => (h.tunnel.status().drops.replay ?? 0) === replays + 1);
    assert.equal(h.tun.written.length, 1, 'JS did not deliver a frame the native path had opened');
    assert.equal(h.tunnel.status().seal_routes, 1);
  });
});

test('open routes: frames the native path opened keep a silent-to-JS device alive at the tick', async () => {
  await withDevice(async ({ h, r, d }) => {
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'first'));
    await waitFor('route', () => r.routes.size === 1);
    // The device's handshake round trip is in GET /status (over loopback: well under a second).
    const rtt = h.tunnel.status().handshake_rtt_ms;
    assert.ok(rtt !== null && rtt.devices === 1 && rtt.max >= 0 && rtt.max < 1_000, JSON.stringify(rtt));
    const st = only(r.routes).state;
    // 31 s later JS has heard nothing, but the native path opened a frame a moment ago (its stamp).
    h.clock.offset = 31_000;
    st.cell[2] = Date.now() + h.clock.offset - 100;
    h.tunnel.tick();
    assert.equal(h.tunnel.status().devices_connected, 1, 'not dead: the native path heard it');
    assert.equal(r.routes.size, 1);
    // Without native frames either, the device is dead at the next silent period, and its route goes.
    h.clock.offset = 62_000;
    h.tunnel.tick();
    assert.equal(h.tunnel.status().devices_connected, 0);
    assert.equal(r.routes.size, 0);
  });
});

test('open routes: dropped when the device roams (then set for the new endpoint), expires, or is deleted', async () => {
  await withDevice(async ({ h, r, d }) => {
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'a'));
    await waitFor('route', () => r.routes.size === 1);
    const port1 = only(r.routes).port;
    d.close();
    await d.open();
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'from-new-port'));
    await waitFor('route moved', () => r.routes.size === 1 && only(r.routes).port !== port1);
    assert.deepEqual(r.calls, [`set ${port1}`, 'delete', `set ${only(r.routes).port}`]);
    // A spoofed inner source is dropped by JS and installs nothing new.
    const calls = r.calls.length;
    d.sendPacket(udpPacket('192.168.255.77', '203.0.113.9', 'spoofed'));
    await waitFor('spoofed drop', () => (h.tunnel.status().drops.spoofed ?? 0) === 1);
    assert.equal(r.calls.length, calls);
    // Expiry at the tick.
    h.clock.offset = 181_000;
    h.tunnel.tick();
    assert.equal(r.routes.size, 0, 'expired session: route dropped');
  });
  await withDevice(async ({ h, r, d }) => {
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'a'));
    await waitFor('route', () => r.routes.size === 1);
    h.api.devices.splice(0, h.api.devices.length);
    await h.tunnel.refreshPeers();
    assert.equal(r.routes.size, 0, 'a deleted device loses its route');
  });
});

test('handshake round trips in GET /status: devices without one left out; p50, p90 and max of the rest', () => {
  assert.equal(handshakeRtts([]), null);
  assert.equal(handshakeRtts([undefined, undefined]), null);
  assert.deepEqual(handshakeRtts([40, undefined, 0]), { devices: 2, p50: 40, p90: 40, max: 40 });
  const ten = [9, 1, 8, 2, 7, 3, 6, 4, 5, 80];
  assert.deepEqual(handshakeRtts(ten), { devices: 10, p50: 6, p90: 80, max: 80 });
});
