// loadConfig: defaults, every problem reported together, unknown POCKETPROXY_* names, the env file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../src/config.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  it('defaults: embedded database in ./data, API 8080, tunnel 1194, subnet, ranges, rates', () => {
    const c = loadConfig({});
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.dataDir, resolve('./data'));
    assert.equal(c.admin, undefined);
    assert.equal(c.publicHost, '127.0.0.1');
    assert.equal(c.publicUrl, 'http://127.0.0.1:8080');
    assert.equal(c.apiPort, 8080);
    assert.equal(c.apiHost, '0.0.0.0');
    assert.equal(c.tunnelPort, 1194);
    assert.equal(c.pushUrl, 'http://127.0.0.1:8081');
    assert.equal(c.apiUrl, 'http://127.0.0.1:8080');
    assert.equal(c.tproxyPort, 12345);
    // The transparent proxy's device sockets with TCP Fast Open unless told otherwise; a bad value is refused.
    assert.equal(c.tproxyFastOpen, true);
    assert.equal(loadConfig({ POCKETPROXY_TPROXY_FASTOPEN: 'false' }).tproxyFastOpen, false);
    assert.equal(problems({ POCKETPROXY_TPROXY_FASTOPEN: 'sometimes' }).length, 1);
    assert.equal(c.deviceSubnet, '192.168.255.0/24');
    assert.deepEqual(c.connectionPorts, { from: 40000, to: 49999 });
    assert.deepEqual(c.deprecated, []);
    assert.equal(c.staleAfterS, 60);
    assert.equal(c.pairingRatePerMin, 10);
    assert.equal(c.ipHistoryKeep, 200);
    assert.equal(c.jwtTtlS, 12 * 3600);
    assert.equal(c.openvpn, 'off');
    // The relay's SOCKS5 front on, HTTP ports through it for devices whose link is far (POCKETPROXY_HTTP_FRONT=auto:
    // a handshake round trip of 10 ms or more, a path change at most once a minute), and CONNECTs answered
    // early (for uncapped connections), unless told otherwise.
    assert.deepEqual(c.socks5Front, {
      port: 12346,
      http: 'auto',
      httpRttMs: 10,
      httpHoldMs: 60_000,
      earlyReply: true,
      httpEarlyReply: true,
    });
    assert.equal(loadConfig({ POCKETPROXY_SOCKS5_EARLY_REPLY: 'false' }).socks5Front?.earlyReply, false);
    assert.equal(loadConfig({ POCKETPROXY_HTTP_EARLY_REPLY: 'false' }).socks5Front?.httpEarlyReply, false);
    assert.equal(loadConfig({ POCKETPROXY_HTTP_FRONT: 'true' }).socks5Front?.http, true);
    assert.equal(loadConfig({ POCKETPROXY_HTTP_FRONT: '0' }).socks5Front?.http, false);
    assert.deepEqual(
      loadConfig({ POCKETPROXY_HTTP_FRONT_RTT_MS: '25.5', POCKETPROXY_HTTP_FRONT_HOLD_S: '5' }).socks5Front,
      { port: 12346, http: 'auto', httpRttMs: 25.5, httpHoldMs: 5_000, earlyReply: true, httpEarlyReply: true },
    );
    assert.equal(
      loadConfig({ POCKETPROXY_SOCKS5_FRONT: 'false' }).socks5Front,
      undefined,
      'auto without the front: off',
    );
    assert.deepEqual(problems({ POCKETPROXY_SOCKS5_FRONT: 'false', POCKETPROXY_HTTP_FRONT: 'true' }), [
      'POCKETPROXY_HTTP_FRONT needs POCKETPROXY_SOCKS5_FRONT (HTTP ports go through the same front)',
    ]);
    for (const [k, v] of [
      ['POCKETPROXY_HTTP_FRONT', 'sometimes'],
      ['POCKETPROXY_HTTP_FRONT_RTT_MS', '0'],
      ['POCKETPROXY_HTTP_FRONT_RTT_MS', 'fast'],
      ['POCKETPROXY_HTTP_FRONT_HOLD_S', '0'],
      ['POCKETPROXY_HTTP_FRONT_HOLD_S', '1.5'],
    ] as const)
      assert.equal(problems({ [k]: v }).length, 1, `${k}=${v}`);
    assert.deepEqual(c.trustProxy, []);
    assert.ok(Object.isFrozen(c));
  });

  it('reads the docs/design.md §3 names', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://u:p@db.example:5432/pp',
      POCKETPROXY_DATA_DIR: '/var/lib/pocketproxy',
      POCKETPROXY_ADMIN_EMAIL: 'Ops@Example.com',
      POCKETPROXY_ADMIN_PASSWORD: 'long-enough-password',
      POCKETPROXY_PUBLIC_HOST: 'relay.example.net',
      POCKETPROXY_API_PORT: '9090',
      POCKETPROXY_INTERNAL_TOKEN: 'x'.repeat(32),
      POCKETPROXY_TRUST_PROXY: 'loopback, 10.0.0.5,10.0.1.0/24,2001:db8::/32',
    });
    assert.equal(c.databaseUrl, 'postgres://u:p@db.example:5432/pp');
    assert.equal(c.dataDir, '/var/lib/pocketproxy');
    assert.deepEqual(c.admin, { email: 'ops@example.com', password: 'long-enough-password' });
    assert.equal(c.publicUrl, 'http://relay.example.net:9090');
    assert.equal(c.apiPort, 9090);
    assert.equal(c.internalToken, 'x'.repeat(32));
    assert.deepEqual(c.trustProxy, ['loopback', '10.0.0.5', '10.0.1.0/24', '2001:db8::/32']);
  });

  it('POCKETPROXY_TRUST_PROXY: off by default and for false/0/no/off; true is refused; every bad entry is named', () => {
    for (const v of ['false', '0', 'no', 'off', 'FALSE'])
      assert.deepEqual(loadConfig({ POCKETPROXY_TRUST_PROXY: v }).trustProxy, [], v);
    for (const v of ['true', 'yes', '1', 'on'])
      assert.match(
        problems({ POCKETPROXY_TRUST_PROXY: v }).join('\n'),
        /^POCKETPROXY_TRUST_PROXY: name the proxies instead of true/m,
        v,
      );
    const p = problems({
      POCKETPROXY_TRUST_PROXY: 'loopback,nginx.local,10.0.0.0/33,10.0.0.1/8/2,::1/129,127.0.0.1',
    }).join('\n');
    for (const bad of ['nginx.local', '10.0.0.0/33', '10.0.0.1/8/2', '::1/129'])
      assert.match(p, new RegExp(`"${bad.replace(/[./]/g, '\\$&')}" is not an address`), p);
    assert.doesNotMatch(p, /"loopback"|"127\.0\.0\.1"/);
  });

  it('reports every schema problem and every unknown POCKETPROXY_* name together', () => {
    const p = problems({
      POCKETPROXY_API_PORT: '70000',
      POCKETPROXY_ADMIN_PASSWORD: 'short',
      POCKETPROXY_ADMIN_EMAIL: 'not-an-email',
      POCKETPROXY_DEVICE_SUBNET: '10.0.0.0/8',
      POCKETPROXY_LOG_LEVEL: 'loud',
      POCKETPROXY_STALE_AFTER_S: 'soon',
      POCKETPROXY_IP_HISTORY_KEEP: '10',
      POCKETPROXY_APIPORT: '1',
      POCKETPROXY_ADMIN_PASWORD: 'typo',
      DATABASE_URL: 'not a url',
    });
    const text = p.join('\n');
    for (const name of [
      'POCKETPROXY_API_PORT',
      'POCKETPROXY_ADMIN_PASSWORD',
      'POCKETPROXY_ADMIN_EMAIL',
      'POCKETPROXY_DEVICE_SUBNET',
      'POCKETPROXY_LOG_LEVEL',
      'POCKETPROXY_STALE_AFTER_S',
      'POCKETPROXY_IP_HISTORY_KEEP',
      'DATABASE_URL',
    ]) {
      assert.match(text, new RegExp(`^${name}: `, 'm'), `${name} not reported in:\n${text}`);
    }
    assert.match(text, /^POCKETPROXY_APIPORT: unknown setting$/m);
    assert.match(text, /^POCKETPROXY_ADMIN_PASWORD: unknown setting$/m);
    assert.ok(p.length >= 10, text);
    // the message names every problem too, one a line
    try {
      loadConfig({ POCKETPROXY_API_PORT: 'x', POCKETPROXY_NOPE: '1' });
    } catch (e) {
      assert.match(
        (e as Error).message,
        /POCKETPROXY_API_PORT[\s\S]*POCKETPROXY_NOPE|POCKETPROXY_NOPE[\s\S]*POCKETPROXY_API_PORT/,
      );
    }
  });

  it('reports cross-field problems: admin email without password, backwards port range, several processes on PGlite', () => {
    assert.match(problems({ POCKETPROXY_ADMIN_EMAIL: 'a@example.com' }).join('\n'), /go together/);
    assert.match(problems({ POCKETPROXY_CONNECTION_PORTS: '50000-49000' }).join('\n'), /POCKETPROXY_CONNECTION_PORTS/);
    assert.match(problems({ POCKETPROXY_CONNECTION_PORTS: '1-70000' }).join('\n'), /POCKETPROXY_CONNECTION_PORTS/);
    assert.match(problems({ POCKETPROXY_API_PROCESSES: '2' }).join('\n'), /needs DATABASE_URL/);
  });

  it('cross-field problems are reported together with schema problems', () => {
    const p = problems({
      POCKETPROXY_API_PORT: 'x',
      POCKETPROXY_ADMIN_EMAIL: 'a@example.com',
      POCKETPROXY_API_PROCESSES: '2',
    });
    assert.match(p.join('\n'), /POCKETPROXY_API_PORT/);
    assert.match(p.join('\n'), /go together/);
    assert.match(p.join('\n'), /needs DATABASE_URL/);
  });

  it('POCKETPROXY_DEVICE_PORTS (device-level ports, removed) is still accepted, whatever its value, and reported as deprecated', () => {
    for (const v of ['30000-39999', '40000-40100', 'nonsense']) {
      const c = loadConfig({ POCKETPROXY_DEVICE_PORTS: v });
      assert.equal(c.deprecated.length, 1);
      assert.match(c.deprecated[0]!, /^POCKETPROXY_DEVICE_PORTS is ignored: device-level ports were removed/);
      assert.ok(!('devicePorts' in c));
    }
  });

  it('ignores empty values and non-POCKETPROXY names; the env file is read and the environment wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pp-config-'));
    try {
      const file = join(dir, 'pocketproxy.env');
      writeFileSync(
        file,
        [
          '# comment',
          '',
          'POCKETPROXY_PUBLIC_HOST="file.example.net"',
          "POCKETPROXY_API_PORT='8181'",
          'POCKETPROXY_STALE_AFTER_S=90',
        ].join('\n'),
      );
      const c = loadConfig({
        POCKETPROXY_CONFIG: file,
        POCKETPROXY_API_PORT: '8282',
        POCKETPROXY_TUNNEL_PORT: '',
        PATH: '/bin',
        HOME: '/root',
      });
      assert.equal(c.publicHost, 'file.example.net');
      assert.equal(c.apiPort, 8282);
      assert.equal(c.staleAfterS, 90);
      assert.equal(c.tunnelPort, 1194);
      writeFileSync(file, 'POCKETPROXY_TYPO=1\n');
      assert.match(problems({ POCKETPROXY_CONFIG: file }).join('\n'), /POCKETPROXY_TYPO: unknown setting/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
