// The data-plane isolation suite (isolation.lab.test.ts) once more with each device's HTTP listeners on
// two threads (the agents run with --lanes 1 --listener-threads 2: a worker thread accepts from the same sockets
// as the main thread and serves the connections without limits, apps/agent/src/proxy/threads.ts), held
// to the same claims: credentials per port, allow-lists, slow heads, limits, revocation within 1 s.
// Listener threads serve one lane (more lanes override them: each lane is a thread of its own).
process.env.POCKETPROXY_LANES = '1';
process.env.POCKETPROXY_LISTENER_THREADS = '2';
await import('./isolation.lab.test.js');
