// Renders docs/errors.md from every error registry in the repository. `node --import tsx
// packages/errors/src/doc.ts --write` rewrites the file; the test in test/docs.test.ts keeps it in step.
import { readdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { allRegistries } from './index.js';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const DOC_PATH = join(ROOT, 'docs/errors.md');

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
  let md = `# Error codes\n\nEvery error PocketProxy reports carries a stable code \`PP_ERR_<AREA>_<THING>\`. Codes are never\nreused or renamed. The API answers them as \`application/problem+json\` (\`code\`, \`detail\`, \`request_id\`);\nproxies put them in the \`X-PocketProxy-Error\` header; logs carry them as \`code\`.\n\nGenerated from the registries (\`src/errors.ts\` of each package) by \`node --import tsx packages/errors/src/doc.ts --write\`;\na test fails when this file is out of step.\n`;
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

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const md = await renderErrorsDoc();
  if (process.argv.includes('--write')) writeFileSync(DOC_PATH, md);
  else process.stdout.write(md);
}

export function currentDoc(): string {
  return existsSync(DOC_PATH) ? readFileSync(DOC_PATH, 'utf8') : '';
}
