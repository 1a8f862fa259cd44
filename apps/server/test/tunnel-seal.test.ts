// The relay's native seal routes (datapath.ts): when the data path gives a device's address a route in
// the TUN's seal path, and when it takes it away. A recording stand-in for the kernel TUN's SealPath
// (the C++ side is packages/tun test/seal.lab.test.ts): a route must always be exactly what JS would
// do for that device — its current session, its current UDP endpoint — or absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowLane } from '@pocketproxy/protocol';
import { buildIPv4Udp, parseIPv4Udp, type SealPath, type SealState } from '@pocketproxy/tun';
import { connectDevice, makeDevice, startHarness, udpPacket, waitFor } from './tunnel/helpers.js';

function recordingSeal() {
  const calls: string[] = [];
  const routes = new Map<number | 'default', { state: SealState; address: string; port: number }>();
  const seal: SealPath = {
    set(dst, state, address, port, lane) {
      calls.push(`set ${dst} ${port}${lane ? ` lane ${lane.slot}/${lane.count}` : ''}`);
      routes.set(dst, { state, address, port });
    },
    delete(dst) {
      calls.push(`delete ${dst}`);
      return routes.delete(dst);
    },
    clear() {
      routes.clear();
    },
  };
  return { seal, calls, routes };
}

type Seal = ReturnType<typeof recordingSeal>;
type Harness = Awaited<ReturnType<typeof startHarness>>;
type Device = Awaited<ReturnType<typeof connectDevice>>;

/**
 * One connected device behind a harness with a recording seal path; with `routed`, one packet ('a')
 * has already reached it, so its address has a route. Closes the harness after `body`.
 */
async function withDevice(
  routed: boolean,
  body: (t: { h: Harness; r: Seal; d: Device }) => Promise<void>,
): Promise<void> {
  const rec = makeDevice(1);
  const r = recordingSeal();
  const h = await startHarness([rec], { sealPath: r.seal });
  try {
    const d = await connectDevice(h, rec);
    if (routed) {
      h.tun.inject(udpPacket('203.0.113.9', '192.168.255.2', 'a'));
      await waitFor('a', () => d.packets[0]);
    }
    await body({ h, r, d });
  } finally {
    await h.close();
  }
}

// 192.168.255.2 as the device table keys it.
const VPN2 = ((192 << 24) | (168 << 16) | (255 << 8) | 2) >>> 0;

test("seal routes: set after the first packet JS seals to a device, with its session state; the counter cell is the session's", async () => {
  await withDevice(false, async ({ h, r, d }) => {
    assert.deepEqual(r.calls, [], 'no route before a packet to the device');
    h.tun.inject(udpPacket('203.0.113.9', '192.168.255.2', 'first'));
    await waitFor('packet at device', () => d.packets[0]);
    const route = r.routes.get(VPN2);
    assert.ok(route, 'route set');
    assert.equal(route.address, '127.0.0.1');
    assert.equal(h.tunnel.status().seal_routes, 1);
    // The route seals with the relay's send key for this device's session: a frame sealed with its key,
    // receiver and next counter from its cell opens at the device, and the session's own next frame
    // takes the counter after it (one cell).
    const st = route.state;
    const key = st.key as { seal(c: number, src: Uint8Array, dst: Uint8Array, off: number): number };
    const c = st.counter[0]!;
    st.counter[0] = c + 1;
    const pkt = udpPacket('203.0.113.9', '192.168.255.2', 'sealed-like-native');
    const frame = Buffer.alloc(pkt.length + 32);
    frame[0] = 4;
    frame[1] = 1;
    frame.writeUInt32LE(st.receiver, 4);
    frame.writeBigUInt64LE(BigInt(c), 8);
    key.seal(c, pkt, frame, 16);
    const opened = d.initiator.receive(frame, Date.now());
    assert.equal(opened.kind, 'packet');
    assert.equal(parseIPv4Udp((opened as { packet: Buffer }).packet)!.payload.toString(), 'sealed-like-native');
    // The stand-in does not divert packets, so JS still sees them: no second set for the same route.
    h.tun.inject(udpPacket('203.0.113.9', '192.168.255.2', 'second'));
    await waitFor('second packet', () => d.packets[1]);
    const rawCounter = d.raw.at(-1)!.readBigUInt64LE(8);
    assert.equal(Number(rawCounter), c + 1, 'JS sealed with the counter after the one taken from the cell');
    assert.deepEqual(r.calls, [`set ${VPN2} ${route.port}`]);
  });
});

test('seal routes: dropped when the device roams (then set again for the new endpoint) and, at the tick, when its session expired', async () => {
  await withDevice(true, async ({ h, r, d }) => {
    const port1 = r.routes.get(VPN2)!.port;
    // Roaming: the device's next frame comes from another port -> the route goes, and the packet JS
    // opened from the new endpoint sets it again there (routes are also set on what JS opens).
    d.close();
    await d.open();
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'from-new-port'));
    await waitFor('route moved', () => r.calls.includes(`delete ${VPN2}`) && r.routes.size === 1);
    h.tun.inject(udpPacket('203.0.113.9', '192.168.255.2', 'b'));
    await waitFor('b', () => d.packets[1]);
    const port2 = r.routes.get(VPN2)!.port;
    assert.notEqual(port2, port1);
    assert.deepEqual(r.calls, [`set ${VPN2} ${port1}`, `delete ${VPN2}`, `set ${VPN2} ${port2}`]);
    // Expiry (the session's reject-after time passed): the tick drops it, and JS seals nothing more on it.
    h.clock.offset = 181_000;
    h.tunnel.tick();
    assert.equal(r.routes.size, 0, 'expired session: route dropped at the tick');
    h.tun.inject(udpPacket('203.0.113.9', '192.168.255.2', 'c'));
    assert.equal(r.routes.size, 0, 'no route for an expired session');
    assert.equal(h.tunnel.status().seal_routes, 0);
  });
});

test('seal routes: a deleted device loses its route with its peer entry', async () => {
  await withDevice(true, async ({ h, r }) => {
    assert.equal(r.routes.size, 1);
    h.api.devices.splice(0, h.api.devices.length);
    await h.tunnel.refreshPeers();
    assert.equal(r.routes.size, 0);
    assert.deepEqual(r.calls.at(-1), `delete ${VPN2}`);
  });
});

test('seal routes: a device whose address the API moved loses the old address route at the next tick', async () => {
  await withDevice(true, async ({ h, r }) => {
    assert.equal(r.routes.size, 1);
    h.api.devices[0]!.vpn_ip = '192.168.255.9';
    await h.tunnel.refreshPeers();
    h.tunnel.tick();
    assert.equal(h.tunnel.devices.byAddress(VPN2), undefined, 'the old address is no longer the device');
    assert.equal(r.routes.size, 0, 'no route left for the old address');
  });
});

test('lanes: a device holding two sessions gets each flow by the lane its hash picks, a seal route per slot; a silent lane hands its flows to lane 0', async () => {
  const rec = makeDevice(1);
  const r = recordingSeal();
  const h = await startHarness([rec], { sealPath: r.seal });
  try {
    const sims = [await h.device(rec, 'udp', undefined, { index: 0, count: 2 })];
    await sims[0]!.connect();
    sims.push(await h.device(rec, 'udp', undefined, { index: 1, count: 2 }));
    await sims[1]!.connect();
    // Each lane's confirmation is in once a packet it sent after it has reached the TUN.
    for (const [k, s] of sims.entries()) {
      s.sendPacket(udpPacket('192.168.255.2', '203.0.113.200', `hello from ${k}`));
      await waitFor(`lane ${k} heard`, () =>
        h.tun.written.some((p) => parseIPv4Udp(p)?.payload.toString() === `hello from ${k}`),
      );
    }
    const flow = (i: number, payload: string) =>
      buildIPv4Udp({
        src: `203.0.113.${i}`,
        dst: '192.168.255.2',
        srcPort: 5000,
        dstPort: 6000,
        payload: Buffer.from(payload),
      });
    const want: number[] = [];
    for (let i = 1; i <= 40; i++) {
      want.push(flowLane(flow(i, ''), 2));
      h.tun.inject(flow(i, `f${i}`));
    }
    await waitFor('all flows', () => sims[0]!.packets.length + sims[1]!.packets.length >= 40);
    for (let i = 1; i <= 40; i++) {
      const got = sims.findIndex((s) => s.packets.some((p) => parseIPv4Udp(p)?.payload.toString() === `f${i}`));
      assert.equal(got, want[i - 1], `flow ${i}`);
    }
    assert.ok(want.includes(0) && want.includes(1), 'both lanes used');
    const sets = r.calls.filter((c) => c.startsWith('set'));
    // A route per slot, each to its own lane's endpoint.
    assert.deepEqual(
      sets.sort(),
      [`set ${VPN2} ${sims[0]!.localPort} lane 0/2`, `set ${VPN2} ${sims[1]!.localPort} lane 1/2`].sort(),
    );
    // Lane 1 goes silent past the dead timer while lane 0 keeps talking: lane 1's flows come by lane 0.
    sims[1]!.close();
    h.clock.offset = 31_000;
    sims[0]!.sendPacket(udpPacket('192.168.255.2', '203.0.113.200', 'still here'));
    await waitFor('lane 0 heard', () =>
      h.tun.written.some((p) => parseIPv4Udp(p)?.payload.toString() === 'still here'),
    );
    h.tunnel.tick();
    const before = sims[0]!.packets.length;
    h.tun.inject(flow(want.indexOf(1) + 1, 'again'));
    await waitFor('lane 1 flow by lane 0', () => sims[0]!.packets.length > before);
    assert.equal(parseIPv4Udp(sims[0]!.packets.at(-1)!)!.payload.toString(), 'again');
  } finally {
    await h.close();
  }
});
