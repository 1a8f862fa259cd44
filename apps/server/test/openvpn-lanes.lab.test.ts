// The OpenVPN customer suite (openvpn.lab.test.ts) once more with the device on two lanes (the agent runs
// with --lanes 2): the connections the relay carries with a stamped SYN come by either lane, and the lane
// thread that accepts one must read the stamp (and the OpenVPN subnet the relay announced) as lane 0 does.
process.env.POCKETPROXY_LANES = '2';
await import('./openvpn.lab.test.js');
