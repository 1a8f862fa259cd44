// The agent's native open route (native-routes.ts): set beside the seal route on the current native
// session from the relay's endpoint, moved on a new session, dropped with the seal route (TCP, no
// session, detach); takeHeard reports the session's native stamp once. A recording stand-in for the
// socket's OpenPath (the C++ side: packages/tun open.lab; end to end: tunnel-seal.lab).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nodeAead, resolveTimers, TransportSession, type AeadProvider } from '@pocketproxy/protocol';
import { nativeAead, type BatchUdpSocket, type OpenPath, type OpenState, type SealPath } from '@pocketproxy/tun';
import { NativeRoutes, type SealInputs } from '../src/tunnel/native-routes.js';

const timers = resolveTimers({});
const session = (localIndex: number, aead: AeadProvider = nativeAead()) =>
  new TransportSession({
    localIndex,
    remoteIndex: 77,
    keys: { sendKey: randomBytes(32), recvKey: randomBytes(32) },
    createdAt: Date.now(),
    isInitiator: true,
    aead,
  });

function setup() {
  const calls: string[] = [];
  const routes = new Map<number, { state: OpenState; address: string; port: number; innerSrc?: number }>();
  const open: OpenPath = {
    set(state, address, port, innerSrc) {
      calls.push(`set ${state.index} ${address}:${port}`);
      routes.set(state.index, { state, address, port, innerSrc });
    },
    delete(index) {
      calls.push(`delete ${index}`);
      return routes.delete(index);
    },
    clear() {
      calls.push('clear');
      routes.clear();
    },
  };
  const seal: SealPath = { set() {}, delete: () => true, clear() {} };
  let opened = 5;
  const udp = { stats: () => ({ openNative: opened }) } as unknown as BatchUdpSocket;
  const n = new NativeRoutes({ sealPath: () => seal, sealed: () => 0, openPath: () => open });
  n.attach(udp);
  const inputs = (s: TransportSession | undefined, transport: 'udp' | 'tcp' = 'udp'): SealInputs => ({
    running: true,
    transport,
    session: s,
    relay: { address: '127.0.0.1' },
    relayPort: 51820,
    timers,
    now: Date.now(),
  });
  return { n, calls, routes, inputs, count: (k: number) => (opened = k) };
}

test('open route: the current native session from the relay endpoint, any inner source; moved on rekey, dropped on TCP / no session / detach', () => {
  const { n, calls, routes, inputs } = setup();
  const s1 = session(1);
  n.sync(inputs(s1));
  const r = routes.get(1)!;
  assert.equal(r.innerSrc, undefined, 'the relay forwards customers: any inner source');
  assert.equal(r.state.cell, s1.receiveState(timers).cell, "the session's own replay memory");
  assert.equal(n.opening, true);
  n.sync(inputs(s1));
  assert.deepEqual(calls, ['set 1 127.0.0.1:51820'], 'unchanged: not set again');
  const s2 = session(2);
  n.sync(inputs(s2));
  n.sync(inputs(s2, 'tcp'));
  n.sync(inputs(s2));
  n.sync(inputs(undefined));
  assert.deepEqual(calls, [
    'set 1 127.0.0.1:51820',
    'delete 1',
    'set 2 127.0.0.1:51820',
    'delete 2',
    'set 2 127.0.0.1:51820',
    'delete 2',
  ]);
  assert.equal(n.opening, false);
  // node:crypto sessions cannot be used from C++.
  n.sync(inputs(session(3, nodeAead)));
  assert.equal(routes.size, 0);
  n.sync(inputs(s2));
  n.detach();
  assert.equal(calls.at(-1), 'clear');
  assert.equal(n.opening, false);
});

test("open route: takeHeard reports the session's native stamp once; openedTotal counts from attach", () => {
  const { n, inputs, count } = setup();
  const s = session(4);
  n.sync(inputs(s));
  assert.equal(n.takeHeard(), false, 'nothing opened natively yet');
  s.receiveState(timers).cell[2] = Date.now();
  assert.equal(n.takeHeard(), true);
  assert.equal(n.takeHeard(), false, 'once per stamp');
  count(12);
  assert.equal(n.openedTotal, 7);
});
