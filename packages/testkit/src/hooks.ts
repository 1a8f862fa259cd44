// Process-exit safety net: every live lab is torn down (synchronously) when the process exits or
// gets SIGINT / SIGTERM / SIGHUP, so an interrupted test or demo leaves no namespace behind.
// Handlers are installed while at least one lab is alive, and removed after the last one.

export interface Teardownable {
  teardownSync(): void;
}

const live = new Set<Teardownable>();
// Labs whose owner asked for signal handling; handlers are installed while this is non-empty.
const onSignals = new Set<Teardownable>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const EXIT_CODES: Record<(typeof SIGNALS)[number], number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

function teardownAll() {
  for (const lab of [...live]) {
    try {
      lab.teardownSync();
    } catch (e) {
      console.error('lab teardown failed:', e);
    }
  }
}

const onExit = () => teardownAll();
const onSignal = (sig: (typeof SIGNALS)[number]) => {
  console.error(`lab: ${sig}, tearing down ${live.size} lab(s)`);
  teardownAll();
  process.exit(EXIT_CODES[sig]);
};

export function registerLab(lab: Teardownable, handleSignals = true): void {
  if (live.size === 0) process.on('exit', onExit);
  live.add(lab);
  if (!handleSignals) return;
  if (onSignals.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  onSignals.add(lab);
}

export function unregisterLab(lab: Teardownable): void {
  if (onSignals.delete(lab) && onSignals.size === 0) for (const s of SIGNALS) process.off(s, onSignal);
  if (live.delete(lab) && live.size === 0) process.off('exit', onExit);
}
