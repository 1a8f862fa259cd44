'use client';
// One shared 1-second clock for every "last seen" age on screen (one timer, not one per row).
import { useSyncExternalStore } from 'react';

let now = Date.now();
const subs = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | null = null;

function subscribe(fn: () => void) {
  subs.add(fn);
  if (!timer) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const s of subs) s();
    }, 1000);
  }
  return () => {
    subs.delete(fn);
    if (subs.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}

export function useNow(): number {
  return useSyncExternalStore(
    subscribe,
    () => now,
    () => 0,
  );
}

// ---- live ages without re-rendering ----
// A fleet table shows hundreds of "12s ago" cells. Re-rendering each through React every second
// costs a long task per tick on a modest machine, so one timer writes their text and freshness
// straight into the DOM (React renders the element once and never owns its text).
type AgeEntry = {
  at: string | null | undefined;
  format: (at: string | null | undefined, now: number) => [text: string, fresh: string];
};
const ages = new Map<HTMLElement, AgeEntry>();
let ageTimer: ReturnType<typeof setInterval> | null = null;

function paint(el: HTMLElement, e: AgeEntry, now: number) {
  const [text, fresh] = e.format(e.at, now);
  const label = el.lastChild;
  if (label && label.textContent !== text) label.textContent = text;
  if (!fresh) delete el.dataset.fresh;
  else if (el.dataset.fresh !== fresh) el.dataset.fresh = fresh;
}

/** Keep `el` showing the age of `at`; returns the unregister function. */
export function trackAge(el: HTMLElement, entry: AgeEntry): () => void {
  ages.set(el, entry);
  paint(el, entry, Date.now());
  if (!ageTimer) {
    ageTimer = setInterval(() => {
      const t = Date.now();
      for (const [node, e] of ages) paint(node, e, t);
    }, 1000);
  }
  return () => {
    ages.delete(el);
    if (ages.size === 0 && ageTimer) {
      clearInterval(ageTimer);
      ageTimer = null;
    }
  };
}
