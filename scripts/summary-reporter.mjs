// A node:test reporter that only counts: leaf tests passed / failed / skipped, written as JSON lines to
// its destination. run-tests.mjs adds the counts of every group into one closing line.
export default async function* summary(source) {
  const c = { passed: 0, failed: 0, skipped: 0, todo: 0, failures: [] };
  for await (const ev of source) {
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    const d = ev.data;
    if (d.details?.type === 'suite') continue;
    if (d.skip) c.skipped++;
    else if (d.todo) c.todo++;
    else if (ev.type === 'test:pass') c.passed++;
    else {
      c.failed++;
      c.failures.push(`${d.file ?? ''} :: ${d.name}`);
    }
  }
  yield `${JSON.stringify(c)}\n`;
}
