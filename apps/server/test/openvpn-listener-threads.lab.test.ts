// The OpenVPN customer suite (openvpn.lab.test.ts) once more with the device's HTTP listeners on two
// threads (the agent runs with --listener-threads 2, apps/agent/src/proxy/threads.ts): the connections
// the relay carries with a stamped SYN may be accepted by the worker thread, which must read the stamp
// (and the OpenVPN subnet the relay announced) as the main thread does.
process.env.POCKETPROXY_LISTENER_THREADS = '2';
await import('./openvpn.lab.test.js');
