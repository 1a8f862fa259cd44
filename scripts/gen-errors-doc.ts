// Renders docs/errors.md from every error registry in the repository (the `src/errors.ts` of each package
// and app). `node --import tsx scripts/gen-errors-doc.ts --write` rewrites the file; without --write it
// prints it. packages/errors/test/docs.test.ts fails when the file is out of step.
// Repository tooling, not library code: it loads every workspace's registry by path (docs/design.md §10).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { allRegistries } from '@pocketproxy/errors';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DOC_PATH = join(ROOT, 'docs/errors.md');
const COMMAND = 'node --import tsx scripts/gen-errors-doc.ts --write';

/** Every `src/errors.ts` of a package or app. */
export function registryFiles(): string[] {
  const out: string[] = [];
  for (const top of ['packages', 'apps']) {
    for (const name of readdirSync(join(ROOT, top))) {
      const f = join(ROOT, top, name, 'src/errors.ts');
      if (existsSync(f)) out.push(f);
    }
  }
  return out.sort();
}

export async function renderErrorsDoc(): Promise<string> {
  for (const f of registryFiles()) await import(pathToFileURL(f).href);
  const seen = new Map<string, string>();
  let md =
    '# Error codes\n\n' +
    'Every error PocketProxy reports carries a stable code `PP_ERR_<AREA>_<THING>`. Codes are never\n' +
    'reused or renamed. The API answers them as `application/problem+json` (`code`, `detail`, `request_id`);\n' +
    'proxies put them in the `X-PocketProxy-Error` header; logs carry them as `code`.\n\n' +
    `Generated from the registries (\`src/errors.ts\` of each package) by \`${COMMAND}\`;\n` +
    'a test fails when this file is out of step.\n';
  for (const area of [...allRegistries.keys()].sort()) {
    const reg = allRegistries.get(area)!;
    md += `\n## ${area}\n\n| code | HTTP status | message |\n|---|---|---|\n`;
    for (const [code, spec] of Object.entries(reg)) {
      if (seen.has(code)) throw new Error(`error code ${code} is defined in both ${seen.get(code)} and ${area}`);
      seen.set(code, area);
      md += `| \`${code}\` | ${spec.status} | ${spec.message.replace(/\|/g, '\\|')} |\n`;
    }
  }
  return md;
}

export function currentDoc(): string {
  return existsSync(DOC_PATH) ? readFileSync(DOC_PATH, 'utf8') : '';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const md = await renderErrorsDoc();
  if (process.argv.includes('--write')) writeFileSync(DOC_PATH, md);
  else process.stdout.write(md);
}
