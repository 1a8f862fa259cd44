// The OpenVPN customer suite (openvpn.lab.test.ts) once more with the device's HTTP listeners on two
// threads (the agent runs with --lanes 1 --listener-threads 2, apps/agent/src/proxy/threads.ts): the connections
// the relay carries with a stamped SYN may be accepted by the worker thread, which must read the stamp
// (and the OpenVPN subnet the relay announced) as the main thread does.
// Listener threads serve one lane (more lanes override them: each lane is a thread of its own).
process.env.POCKETPROXY_LANES = '1';
process.env.POCKETPROXY_LISTENER_THREADS = '2';
await import('./openvpn.lab.test.js');
