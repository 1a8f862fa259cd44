// Experiment, not product code: what the agent's absolute-form GET would cost with its per-connection
// socket work in C (a "native front": docs/benchmarks.md, "a native front, measured first"). The addon's
// transparent listener (@pocketproxy/tun SpliceEngine.listen, kernelDst off) does the accept, the head
// read, the dial, the head write, the answer read and the join; JS does per connection what a front's
// calls would: parse the request head, check the credentials, build the upstream head (the HTTP proxy's
// own upstreamRequest), parse the answer head. Left out, so the real front will cost a little more: the
// egress binding (the target is dialled by the default route), the connection's state / allow-list /
// limits and events, the answer head's rewrite (parsed only), usage counting (the joined pairs are quiet).
//
// Run it in a device namespace of the demo lab, on the tunnel address, and send the connection's port
// to it with an nftables redirect on ppd0 (then the agent carries only the tunnel):
//   ip netns exec LAB-dev1 node --import tsx --conditions=source packages/proxy/bench/native-front-proto.ts \
//     VPN_IP 40100 USER PASS TARGET_IP
//   ip netns exec LAB-dev1 nft add table ip proto
//   ip netns exec LAB-dev1 nft 'add chain ip proto pre { type nat hook prerouting priority -100; }'
//   ip netns exec LAB-dev1 nft add rule ip proto pre iifname ppd0 tcp dport 40000 redirect to :40100
// and compare the agent's plus this process's CPU per connection with the agent alone (same nat table,
// the rule on another port), newconn-load `absolute`, alternated.
import { timingSafeEqual } from 'node:crypto';
import { SpliceEngine } from '@pocketproxy/tun';
import { parseProxyAuthorization } from '../src/http/basic-auth.js';
import { bodyFraming } from '../src/http/body.js';
import { findHeadEnd, parseRequestHead, parseResponseHead } from '../src/http/head.js';
import { requestTarget } from '../src/http/request.js';
import { upstreamRequest } from '../src/http/server.js';

const [host, port, user, pass, target] = process.argv.slice(2);
if (!host || !port || !user || !pass || !target) {
  process.stderr.write('usage: native-front-proto.ts LISTEN_IP PORT USER PASS TARGET_IP\n');
  process.exit(2);
}
const want = Buffer.from(`${user}:${pass}`);
const engine = new SpliceEngine();
let served = 0;
engine.listen(
  host,
  Number(port),
  { peekMs: 10_000, connectMs: 10_000, earlyDialsPerDevice: 0, kernelDst: false },
  {
    route: () => [target, 80, false, '', 0],
    hello: (_client, _ip, _port, _dst, _dport, peeked, final) => {
      const end = findHeadEnd(peeked);
      if (end < 0) return final ? null : undefined;
      const head = parseRequestHead(peeked.subarray(0, end));
      const t = requestTarget(head);
      const auth = parseProxyAuthorization(head.headers);
      const got = auth && auth !== 'malformed' ? Buffer.from(`${auth.user}:${auth.pass}`) : Buffer.alloc(0);
      if (!t.url || got.length !== want.length || !timingSafeEqual(got, want)) return null;
      served++;
      return Buffer.from(upstreamRequest(head, t.url, bodyFraming(head)).request.head);
    },
    answered: (_socks, bytes) => {
      const end = findHeadEnd(bytes);
      if (end < 0) return -1;
      parseResponseHead(bytes.subarray(0, end));
      return 0; // the whole answer goes to the customer
    },
    event: (kind, client, _dst, _dport, detail) => process.stderr.write(`${kind} ${client}: ${detail}\n`),
  },
);
// The engine's handles do not keep the process alive (their owners decide that): this does, until SIGTERM.
setInterval(() => {}, 1 << 30);
process.once('SIGTERM', () => {
  process.stderr.write(`served ${served} ${JSON.stringify(engine.listenStats())}\n`);
  engine.close();
  process.exit(0);
});
