// The data plane under faults (dataplane-faults.lab.test.ts) once more with each device on two lanes (the
// agents run with --lanes 2, docs/protocol.md §3.1): the relay's tunnel process killed (every lane's session
// forgotten: flows on lane 1 must be back as fast as lane 0's, which tells the other lanes), a device falling
// silent, the carrier address changing under a download, UDP to the relay blocked.
process.env.POCKETPROXY_LANES = '2';
await import('./dataplane-faults.lab.test.js');
