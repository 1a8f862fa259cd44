// The data-plane isolation suite (isolation.lab.test.ts) once more with each device on two lanes (the
// agents run with --lanes 2, docs/protocol.md §3.1: two tunnel sessions, a two-queue TUN steered by the
// relay's flow hash, the unlimited HTTP listeners a socket per lane on a thread per lane), held to the same
// claims: credentials per port, allow-lists, slow heads, limits, revocation within 1 s.
process.env.POCKETPROXY_LANES = '2';
await import('./isolation.lab.test.js');
