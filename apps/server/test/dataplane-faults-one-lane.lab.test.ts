// The data plane under faults (dataplane-faults.lab.test.ts) once more with each device on one lane
// (--lanes 1): the relay's tunnel process killed, a device falling silent, the carrier address changing
// under a download, UDP to the relay blocked. The suite itself runs the agents' default, `--lanes auto`
// (two lanes on a two-core machine: flows on lane 1 must come back as fast as lane 0's, which tells the
// other lanes).
process.env.POCKETPROXY_LANES = '1';
await import('./dataplane-faults.lab.test.js');
