// The data-plane isolation suite (isolation.lab.test.ts) once more with each device on one lane (the agents
// run with --lanes 1: one tunnel session, a one-queue TUN, every listener on the main thread, as on a
// one-core device, a kernel without multi-queue TUN, or a relay from before lanes), held to the same
// claims: credentials per port, allow-lists, slow heads, limits, revocation within 1 s. The suite itself
// runs the agents' default, `--lanes auto` (a lane per core: two on a two-core machine).
process.env.POCKETPROXY_LANES = '1';
await import('./isolation.lab.test.js');
