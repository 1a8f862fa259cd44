// Thread names for the OS (PR_SET_NAME): Node names none of its threads.
import { loadAddon } from './native.js';

/**
 * Names the calling thread (what `top -H` and /proc/<pid>/task/<tid>/comm show; at most 15 bytes).
 * Node names none of its threads; the agent names its tunnel worker so its CPU can be told apart
 * from V8's helper threads. Best effort: false without the addon or when refused.
 */
export function setThreadName(name: string): boolean {
  try {
    return loadAddon().setThreadName(name);
  } catch {
    return false;
  }
}
