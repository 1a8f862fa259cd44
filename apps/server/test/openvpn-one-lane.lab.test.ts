// The OpenVPN customer suite (openvpn.lab.test.ts) once more with the device on one lane (--lanes 1): the
// connections the relay carries with a stamped SYN all come by lane 0, to the main thread's listeners. The
// suite itself runs the agent's default, `--lanes auto` (two lanes on a two-core machine: the lane thread
// that accepts a stamped connection must read the stamp and the OpenVPN subnet as lane 0 does).
process.env.POCKETPROXY_LANES = '1';
await import('./openvpn.lab.test.js');
