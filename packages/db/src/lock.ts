import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dbError } from './errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates `<dir>/pocketproxy.lock` holding our PID (O_EXCL). A lock left by a dead process is taken
 * over; a live one refuses with PP_ERR_DB_LOCKED. Returns the release function.
 */
export function acquireDirLock(dir: string): () => void {
  const path = join(dir, 'pocketproxy.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw dbError('PP_ERR_DB_LOCKED', { dir, pid });
      unlinkSync(path); // stale: its owner is gone
    }
  }
  throw dbError('PP_ERR_DB_LOCKED', { dir, pid: 'unknown' });
}
