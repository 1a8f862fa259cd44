// One service per flow (docs/design.md §2): every function the flows table names is exported by the file it
// names, and route handlers and worker jobs hold no SQL of their own (they parse, call a service, answer).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = new URL('../../../', import.meta.url).pathname;
const SRC = join(ROOT, 'apps/server/src');

/** The rows of the flows table in docs/design.md §2: flow, owner cell. */
function flowRows(): { flow: string; owner: string }[] {
  const text = readFileSync(join(ROOT, 'docs/design.md'), 'utf8');
  const start = text.indexOf('| flow | owner');
  assert.ok(start > 0, 'docs/design.md §2 has the flows table');
  const rows: { flow: string; owner: string }[] = [];
  for (const line of text.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    rows.push({ flow: cells[1]!, owner: cells[2]! });
  }
  return rows;
}

test('every function the flows table names is exported by the service file it names', () => {
  const rows = flowRows();
  assert.ok(rows.length >= 10, `${rows.length} flows`);
  let checked = 0;
  for (const { flow, owner } of rows) {
    // "`file.ts` (`fnA`, `fnB`), `other.ts` (`fnC`)": each file with the names in its parentheses.
    for (const m of owner.matchAll(/`([\w/.-]+\.ts)`(?:\s*(\([^)]*\)))?/g)) {
      const file = m[1]!.includes('/') ? join(SRC, m[1]!) : join(SRC, 'services', m[1]!);
      assert.ok(existsSync(file), `${flow}: ${m[1]} exists`);
      const text = readFileSync(file, 'utf8');
      for (const n of (m[2] ?? '').matchAll(/`(\w+)`/g)) {
        const name = n[1]!;
        assert.match(
          text,
          new RegExp(`export (async )?(function|const|class) ${name}\\b`),
          `${flow}: ${m[1]} exports ${name}`,
        );
        checked++;
      }
    }
  }
  assert.ok(checked >= 30, `${checked} names checked`);
});

test('route handlers and worker jobs run no SQL of their own', () => {
  const routes = join(SRC, 'api/routes');
  for (const f of readdirSync(routes).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(routes, f), 'utf8');
    assert.doesNotMatch(text, /\.query(Relaxed)?\s*(<[^>]*>)?\s*\(|\.tx\s*\(/, `api/routes/${f} runs SQL`);
  }
  const jobs = readFileSync(join(SRC, 'worker/jobs.ts'), 'utf8');
  const queries = [...jobs.matchAll(/\.query\s*(<[^>]*>)?\s*\(\s*(['`])([^'`]*)/g)].map((m) => m[3]);
  assert.deepEqual(queries, ['SELECT pg_try_advisory_xact_lock($1) AS ok'], 'only the job lock');
  const system = readFileSync(join(SRC, 'system.ts'), 'utf8');
  assert.doesNotMatch(system, /\.query\s*(<[^>]*>)?\s*\(/, 'system.ts only wires');
  assert.doesNotMatch(system, /fetch\(/, 'the push client lives in services/push.ts');
});
