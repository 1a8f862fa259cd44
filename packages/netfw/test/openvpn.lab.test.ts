// OpenVPN customer rules with the real kernel. A veth named tun1 stands in for OpenVPN's tun:
//
//   [customer 10.9.0.2, default via 10.9.0.1] --tun1-- [relay 10.9.0.1 | inet0 "internet" 203.0.113.0/24]
//                                                      [outsider 198.51.100.2] --r0-- [relay 198.51.100.1]
//
// The "internet" is a veth whose peer stays in the relay namespace: anything routed there vanishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFirewall, createRunner } from '../src/index.js';
import { inNs, link, needsRoot, RELAY_SERVICES, startIn, tcpTry, udpConnectedTry, withNamespaces } from './lab.js';

test('OpenVPN customers: TCP redirected to the tproxy, DNS redirected, QUIC rejected fast, nothing else leaks', async (t) => {
  if (!(await needsRoot(t))) return;
  await withNamespaces(['cust', 'relay', 'outsider'], async (ns) => {
    const [cust, relay, out] = [ns.cust!, ns.relay!, ns.outsider!];
    await link({ ns: cust, ifname: 'c0', addr: '10.9.0.2/24' }, { ns: relay, ifname: 'tun1', addr: '10.9.0.1/24' });
    await inNs(cust, 'ip', ['route', 'add', 'default', 'via', '10.9.0.1']);
    await link(
      { ns: out, ifname: 'o0', addr: '198.51.100.2/24' },
      { ns: relay, ifname: 'r0', addr: '198.51.100.1/24' },
    );
    // Both ends of these veths stay in the relay namespace: a route to nowhere, and a pp0.
    await inNs(relay, 'ip', ['link', 'add', 'inet0', 'type', 'veth', 'peer', 'name', 'inet1']);
    await inNs(relay, 'ip', ['link', 'set', 'inet0', 'up']);
    await inNs(relay, 'ip', ['route', 'add', '203.0.113.0/24', 'dev', 'inet0']);
    await inNs(relay, 'ip', ['link', 'add', 'pp0', 'type', 'veth', 'peer', 'name', 'pp0peer']);
    const services = await startIn(relay, RELAY_SERVICES);
    try {
      const fw = createFirewall({ run: createRunner({ netns: relay }) });
      await fw.applySysctls();
      await fw.apply({
        tunnelInterface: 'pp0',
        deviceSubnet: '192.168.255.0/24',
        tunnelAddress: '192.168.255.1',
        mssClamp: 'pmtu',
        ports: [],
        openvpn: { subnet: '10.9.0.0/24', interface: 'tun1', tproxyPort: 12345, dnsRedirectPort: 5353 },
      });
      // Any TCP destination lands on the transparent proxy, at tun1's own address.
      assert.equal(await tcpTry(cust, '203.0.113.50', 443, '10.9.0.2'), 'tproxy-got 10.9.0.2 for 10.9.0.1:12345');
      assert.equal(await tcpTry(cust, '203.0.113.51', 80, '10.9.0.2'), 'tproxy-got 10.9.0.2 for 10.9.0.1:12345');
      // DNS to anywhere is answered by the relay's redirect target, not forwarded.
      assert.equal(await udpConnectedTry(cust, '203.0.113.53', 53), 'dns-redirected ping');
      // QUIC: icmp port-unreachable, so the socket errors at once (a browser falls back to TCP).
      assert.equal(await udpConnectedTry(cust, '203.0.113.50', 443), 'ECONNREFUSED');
      // Other UDP would leave with the relay's address: refused (admin-prohibited -> EHOSTUNREACH).
      assert.equal(await udpConnectedTry(cust, '203.0.113.50', 5000), 'EHOSTUNREACH');
      // The tproxy port is not reachable by dialling it directly from outside.
      assert.equal(await tcpTry(out, '198.51.100.1', 12345, '198.51.100.2'), 'TIMEOUT');
      // ...while the relay itself (loopback) still can.
      assert.match(
        await inNs(relay, process.execPath, [
          '-e',
          "require('net').connect(12345,'127.0.0.1').on('data',(d)=>{console.log(String(d));process.exit(0)})",
        ]),
        /tproxy-got 127\.0\.0\.1/,
      );
    } finally {
      services.kill('SIGKILL');
    }
  });
});
