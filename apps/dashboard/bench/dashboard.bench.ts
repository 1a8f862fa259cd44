// Dashboard weight check: first-load JS and CSS (gzip) of every exported route, from
// apps/dashboard/out (run `npx next build` in apps/dashboard first). Exits 1 over the budget.
//   npm run bench:dashboard
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET_KB = 300;
const out = fileURLToPath(new URL('../out/', import.meta.url));
if (!existsSync(out)) {
  console.error(`no build at ${out}; run \`npx next build\` in apps/dashboard first`);
  process.exit(2);
}

const gz = new Map<string, number>();
function gzipSize(urlPath: string): number {
  const cached = gz.get(urlPath);
  if (cached !== undefined) return cached;
  const file = join(out, urlPath.replace(/^\//, '').split('?')[0] ?? '');
  const n = existsSync(file) ? gzipSync(readFileSync(file), { level: 9 }).length : 0;
  gz.set(urlPath, n);
  return n;
}

function pages(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === '_next') continue;
    if (statSync(p).isDirectory()) found.push(...pages(p));
    else if (name === 'index.html') found.push(p);
  }
  return found;
}

const kb = (n: number) => (n / 1024).toFixed(1);
let worst = 0;
const rows: string[] = [];
for (const html of pages(out).sort()) {
  const text = readFileSync(html, 'utf8');
  const scripts = new Set([...text.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1] as string));
  const styles = new Set([...text.matchAll(/<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"/g)].map((m) => m[1] as string));
  const js = [...scripts].reduce((s, u) => s + gzipSize(u), 0);
  const css = [...styles].reduce((s, u) => s + gzipSize(u), 0);
  const htmlGz = gzipSync(text).length;
  worst = Math.max(worst, js);
  rows.push(`${('/' + relative(out, html).replace(/index\.html$/, '')).padEnd(18)} js ${kb(js).padStart(6)} KB  css ${kb(css).padStart(5)} KB  html ${kb(htmlGz).padStart(5)} KB  (${scripts.size} scripts)`);
}

const chunks = join(out, '_next/static/chunks');
const all = readdirSync(chunks).filter((f) => f.endsWith('.js'));
const total = all.reduce((s, f) => s + gzipSize(`/_next/static/chunks/${f}`), 0);
const uplot = all.find((f) => readFileSync(join(chunks, f), 'utf8').includes('uplot'));

console.log('first load per route (gzip):');
for (const r of rows) console.log(`  ${r}`);
console.log(`all JS chunks together: ${kb(total)} KB gzip in ${all.length} files`);
if (uplot) console.log(`uPlot chunk (device page only, loaded on demand): ${kb(gzipSize(`/_next/static/chunks/${uplot}`))} KB gzip`);
console.log(`largest first load: ${kb(worst)} KB gzip (budget ${BUDGET_KB} KB)`);
if (worst > BUDGET_KB * 1024) process.exit(1);
