// Tables that do not fit their box turn into stacked cards (one card per row, each cell labelled with
// its column's header) instead of scrolling sideways, where their last columns (a row's actions)
// would be out of sight. Measured, not guessed from the window width: the same table fits at 1280 px
// with three short rows and not with a long device name, and pages add columns over time.
// One observer for the whole page; the shell starts it (components/Shell.tsx).

const STACKED = 'stacked';

/** Whether the table in `wrap` needs more width than the wrap has, measured in its table form. */
function overflows(wrap: HTMLElement, table: HTMLTableElement): boolean {
  const was = wrap.classList.contains(STACKED);
  if (was) wrap.classList.remove(STACKED);
  const over = table.scrollWidth > wrap.clientWidth + 1;
  if (was && !over) return false;
  if (was) wrap.classList.add(STACKED);
  return over;
}

/** Give every cell the text of its column's header, for the stacked form's labels. */
function label(table: HTMLTableElement): void {
  const heads = Array.from(table.tHead?.rows[0]?.cells ?? []).map((th) => {
    const t = (th.textContent ?? '').replace(/[▲▼]/g, '').trim();
    return th.querySelector('input[type="checkbox"]') ? '' : t;
  });
  for (const body of Array.from(table.tBodies))
    for (const row of Array.from(body.rows)) {
      let col = 0;
      for (const cell of Array.from(row.cells)) {
        const text = heads[col] ?? '';
        if (cell.dataset.label !== text) cell.dataset.label = text;
        col += cell.colSpan || 1;
      }
    }
}

function check(root: HTMLElement): void {
  for (const wrap of Array.from(root.querySelectorAll<HTMLElement>('.table-wrap'))) {
    const table = wrap.querySelector<HTMLTableElement>('table.table');
    if (!table) continue;
    const stack = overflows(wrap, table);
    if (stack) label(table);
    wrap.classList.toggle(STACKED, stack);
  }
}

/** Watch `root` for tables (added, grown, or their box resized); returns the stop function. */
export function watchTables(root: HTMLElement): () => void {
  let frame = 0;
  const schedule = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      check(root);
    });
  };
  const resize = new ResizeObserver(schedule);
  resize.observe(root);
  // Rows and cells come and go; ages ticking inside cells (text of a span) do not matter.
  const mut = new MutationObserver((records) => {
    for (const r of records) {
      const t = r.target as HTMLElement;
      if (t.closest?.('table') || [...r.addedNodes, ...r.removedNodes].some((n) => n.nodeType === 1)) {
        if (t.classList?.contains('age') || t.parentElement?.classList.contains('age')) continue;
        schedule();
        return;
      }
    }
  });
  mut.observe(root, { childList: true, subtree: true });
  window.addEventListener('resize', schedule);
  schedule();
  return () => {
    cancelAnimationFrame(frame);
    resize.disconnect();
    mut.disconnect();
    window.removeEventListener('resize', schedule);
  };
}
