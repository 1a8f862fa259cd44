// Bad states are refused with a PPError (stable code) before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPPError } from '@pocketproxy/errors';
import { validateState, type FirewallState } from '../src/index.js';
import { base, busy, oneDevice } from './fixtures.js';

function rejects(state: unknown, code: string, re?: RegExp): void {
  assert.throws(
    () => validateState(state as FirewallState),
    (e: unknown) => {
      assert.ok(isPPError(e), `not a PPError: ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (re) assert.match(e.message, re);
      return true;
    },
  );
}

const port = oneDevice.ports[0]!;
const withPort = (p: object) => ({ ...base, ports: [{ ...port, ...p }] });

test('valid states pass and come back canonical', () => {
  const v = validateState(busy);
  assert.deepEqual(
    v.ports.map((p) => p.port),
    [30000, 30001, 30002],
  );
  assert.deepEqual(v.ports[1]!.allowFrom, ['10.0.0.0/8', '203.0.113.7']);
  assert.ok(Object.isFrozen(v) && Object.isFrozen(v.ports[0]));
  assert.deepEqual(validateState(withPort({ allowFrom: ['198.51.100.9/32'] })).ports[0]!.allowFrom, ['198.51.100.9']);
});

test('ports must be integers 1-65535', () => {
  for (const bad of [0, 65536, -1, 1.5, '80', NaN])
    rejects(withPort({ port: bad }), 'PP_ERR_NETFW_INVALID_PORT', /ports\[0\]\.port/);
  rejects(withPort({ targetPort: 70000 }), 'PP_ERR_NETFW_INVALID_PORT', /targetPort/);
  rejects({ ...busy, openvpn: { ...busy.openvpn!, tproxyPort: 0 } }, 'PP_ERR_NETFW_INVALID_PORT');
});

test('addresses are parsed strictly', () => {
  for (const bad of [
    '192.168.255.02',
    '192.168.255',
    '192.168.255.2.1',
    '192.168.255.256',
    ' 192.168.255.2',
    '::1',
    '0x7f.0.0.1',
  ]) {
    rejects(withPort({ vpnIp: bad }), 'PP_ERR_NETFW_INVALID_ADDRESS');
  }
  rejects(withPort({ vpnIp: '10.0.0.2' }), 'PP_ERR_NETFW_ADDRESS_OUTSIDE_SUBNET');
  rejects(withPort({ vpnIp: '192.168.255.255' }), 'PP_ERR_NETFW_ADDRESS_OUTSIDE_SUBNET');
  rejects(withPort({ vpnIp: '192.168.255.1' }), 'PP_ERR_NETFW_INVALID_STATE', /tunnelAddress/);
  rejects({ ...base, tunnelAddress: '192.168.254.1' }, 'PP_ERR_NETFW_ADDRESS_OUTSIDE_SUBNET');
});

test('CIDRs are parsed strictly', () => {
  rejects({ ...base, deviceSubnet: '192.168.255.1/24' }, 'PP_ERR_NETFW_INVALID_CIDR', /host bits/);
  rejects({ ...base, deviceSubnet: '192.168.255.0' }, 'PP_ERR_NETFW_INVALID_CIDR', /missing/);
  rejects({ ...base, deviceSubnet: '192.168.255.0/33' }, 'PP_ERR_NETFW_INVALID_CIDR');
  rejects({ ...base, deviceSubnet: '192.168.255.0/024' }, 'PP_ERR_NETFW_INVALID_CIDR');
  rejects(withPort({ allowFrom: ['10.0.0.1/8'] }), 'PP_ERR_NETFW_INVALID_CIDR', /allowFrom\[0\]/);
  rejects(withPort({ allowFrom: 'x' }), 'PP_ERR_NETFW_INVALID_STATE');
  rejects(
    { ...busy, openvpn: { ...busy.openvpn!, subnet: '192.168.0.0/16' } },
    'PP_ERR_NETFW_INVALID_STATE',
    /overlaps/,
  );
});

test('duplicates are rejected', () => {
  rejects({ ...base, ports: [port, { ...port, proto: 'udp' }] }, 'PP_ERR_NETFW_DUPLICATE_PORT', /30000/);
  rejects(withPort({ allowFrom: ['10.0.0.0/8', '10.0.0.0/8'] }), 'PP_ERR_NETFW_DUPLICATE_SOURCE');
  rejects(
    withPort({ allowFrom: ['10.0.0.0/8', '10.1.2.3'] }),
    'PP_ERR_NETFW_DUPLICATE_SOURCE',
    /10\.0\.0\.0\/8 and 10\.1\.2\.3/,
  );
  rejects({ ...busy, ports: [{ ...port, port: 12345 }] }, 'PP_ERR_NETFW_INVALID_STATE', /transparent proxy/);
});

test('interface names cannot smuggle nft syntax', () => {
  for (const bad of ['pp0" accept', 'a b', '', 'x'.repeat(16), 'lo', 'pp0;'])
    rejects({ ...base, tunnelInterface: bad }, 'PP_ERR_NETFW_INVALID_INTERFACE');
  rejects({ ...busy, openvpn: { ...busy.openvpn!, interface: 'pp0' } }, 'PP_ERR_NETFW_INVALID_STATE', /differ/);
});

test('other fields', () => {
  rejects({ ...base, mssClamp: 100 }, 'PP_ERR_NETFW_INVALID_STATE', /mssClamp/);
  rejects(withPort({ proto: 'icmp' }), 'PP_ERR_NETFW_INVALID_STATE', /proto/);
  rejects(withPort({ enabled: 'yes' }), 'PP_ERR_NETFW_INVALID_STATE', /enabled/);
  rejects({ ...base, ports: null }, 'PP_ERR_NETFW_INVALID_STATE');
  rejects(null, 'PP_ERR_NETFW_INVALID_STATE');
});

test('socks5Front: a port and a mark; not a forwarded port nor the OpenVPN ones', () => {
  const ok = validateState({ ...base, socks5Front: { port: 12346, mark: 0x7050 } });
  assert.deepEqual(ok.socks5Front, { port: 12346, mark: 0x7050 });
  assert.deepEqual(validateState({ ...base, socks5Front: { port: 12346, mark: 1, http: true } }).socks5Front, {
    port: 12346,
    mark: 1,
    http: true,
  });
  assert.deepEqual(validateState({ ...base, socks5Front: { port: 12346, mark: 1, http: 'auto' } }).socks5Front, {
    port: 12346,
    mark: 1,
    http: 'auto',
  });
  assert.throws(
    () => validateState({ ...base, socks5Front: { port: 12346, mark: 1, http: 'yes' as unknown as boolean } }),
    /socks5Front\.http/,
  );
  for (const bad of [
    { port: 0, mark: 1 },
    { port: 70000, mark: 1 },
    { port: 12346, mark: 0 },
    { port: 12346, mark: 1.5 },
    { port: 12346, mark: 2 ** 32 },
  ])
    assert.throws(() => validateState({ ...base, socks5Front: bad }), /socks5Front\.(port|mark)/);
  assert.throws(
    () => validateState({ ...oneDevice, socks5Front: { port: 30001, mark: 1 } }),
    /is the SOCKS5 front port/,
  );
  assert.throws(
    () => validateState({ ...busy, socks5Front: { port: 12345, mark: 1 } }),
    /transparent proxy or DNS redirect port/,
  );
});

test('viaFront: a boolean when present, kept in the canonical copy only when true', () => {
  const port = { port: 30000, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: true };
  const front = { port: 12346, mark: 1, http: 'auto' as const };
  assert.equal(
    validateState({ ...base, socks5Front: front, ports: [{ ...port, viaFront: true }] }).ports[0]!.viaFront,
    true,
  );
  assert.ok(
    !('viaFront' in validateState({ ...base, socks5Front: front, ports: [{ ...port, viaFront: false }] }).ports[0]!),
  );
  assert.throws(
    () => validateState({ ...base, ports: [{ ...port, viaFront: 'yes' as unknown as boolean }] }),
    /ports\[0\]\.viaFront/,
  );
});
