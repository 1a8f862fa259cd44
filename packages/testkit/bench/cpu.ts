// What the benches read of the host's and a process's CPU, written once.
import { readFileSync } from 'node:fs';

/** Milliseconds for a fixed integer loop on this thread: how fast the host runs these cores right now. */
export function cpuProbeMs(): number {
  const t0 = process.hrtime.bigint();
  let x = 0;
  for (let i = 0; i < 3e8; i++) x = (x + i * 7) % 1000003;
  if (x < 0) console.log(x); // keep the loop
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** USER_HZ: the unit of /proc/<pid>/stat's times. */
export const TICK = 100;

/** /proc/<pid>/stat's fields after the process name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14) ... num_threads(17). */
export function procStatFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const f = procStatFields(pid);
  return (Number(f[11]) + Number(f[12])) / TICK;
}
