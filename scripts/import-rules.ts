// The dependency directions of the repository, as data, and a pure check of one source file against them
// (docs/design.md §10). No file system here: packages/testkit/test/import-rules.test.ts walks the tree and
// feeds every source file through checkFile, and shows with fabricated files that each rule fails.
//
//   errors, api-schema                      the bottom: import nothing of the product
//   protocol, proxy, netfw, tun, db         libraries: import only errors
//   testkit                                 the lab: src imports any package, its tests/benches anything
//   server, agent, dashboard                apps: import packages (never testkit), never each other
//
// A workspace's tests and benches may also import any package (testkit too) and scripts/; package tests
// never import an app (testkit's excepted). No `process.env` in packages/*/src (testkit excepted): the
// apps read configuration and pass it in.
import { builtinModules } from 'node:module';
import { posix } from 'node:path';

export const PACKAGES = ['api-schema', 'db', 'errors', 'netfw', 'protocol', 'proxy', 'testkit', 'tun'] as const;
export const APPS = ['agent', 'dashboard', 'server'] as const;

const pkg = (names: readonly string[]) => names.map((n) => `packages/${n}`);

/** What the src of each workspace may import of the product (workspace directories). */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  'packages/errors': [],
  'packages/api-schema': [],
  'packages/protocol': pkg(['errors']),
  'packages/proxy': pkg(['errors']),
  'packages/netfw': pkg(['errors']),
  'packages/tun': pkg(['errors']),
  'packages/db': pkg(['errors']),
  'packages/testkit': pkg(PACKAGES.filter((p) => p !== 'testkit')),
  'apps/server': pkg(['api-schema', 'db', 'errors', 'netfw', 'protocol', 'proxy', 'tun']),
  'apps/agent': pkg(['errors', 'protocol', 'proxy', 'tun']),
  'apps/dashboard': pkg(['api-schema']),
};

const BUILTINS = new Set(builtinModules);
const isBuiltin = (spec: string) => spec.startsWith('node:') || BUILTINS.has(spec.split('/')[0]!);

/** Extra limits on what a library's src may import from outside the product. */
export const EXTERNALS: Readonly<Record<string, { allowed: (spec: string) => boolean; why: string }>> = {
  // sans-IO: keys, handshake, framing; no sockets, no timers of its own
  'packages/protocol': { allowed: (s) => s === 'node:crypto', why: 'the wire protocol is sans-IO (node:crypto only)' },
  'packages/proxy': { allowed: isBuiltin, why: 'the proxy protocols use node built-ins only' },
};

/** Identifiers a workspace's src must not use at all. */
export const FORBIDDEN_GLOBALS: Readonly<Record<string, readonly string[]>> = {
  'packages/protocol': ['setTimeout', 'setInterval', 'setImmediate'],
};

export type Part = 'src' | 'test' | 'bench' | 'tool';

export interface Violation {
  path: string;
  line: number;
  rule:
    | 'layer'
    | 'app-to-app'
    | 'testkit-in-src'
    | 'by-path'
    | 'external'
    | 'process-env'
    | 'computed-import'
    | 'global';
  message: string;
}

export interface ImportRef {
  /** null: import()/require() of something computed at run time. */
  spec: string | null;
  line: number;
  kind: 'static' | 'dynamic' | 'require';
}

/** `packages/x`, `apps/x`, `scripts`, or '' (anything else) for a repository-relative path. */
export function workspaceOf(path: string): string {
  const [top, name] = path.split('/');
  if ((top === 'packages' || top === 'apps') && name !== undefined && path.split('/').length > 2)
    return `${top}/${name}`;
  if (top === 'scripts') return 'scripts';
  return '';
}

/** test/ and bench/ of a workspace are tests and benches; everything else of it is its product code. */
export function partOf(path: string): Part {
  const ws = workspaceOf(path);
  if (ws === 'scripts' || ws === '') return 'tool';
  const sub = path.slice(ws.length + 1).split('/')[0];
  if (sub === 'test' || sub === 'tests') return 'test';
  if (sub === 'bench') return 'bench';
  return 'src';
}

interface Tok {
  t: 'id' | 'str' | 'tpl' | 'num' | 'regex' | 'p';
  v: string;
  line: number;
}

const EXPR_KEYWORDS = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'instanceof',
  'yield',
  'await',
]);

/** A small JavaScript/TypeScript lexer: enough to tell code from comments, strings, templates and regexes. */
function tokenize(src: string, firstLine = 1): Tok[] {
  const out: Tok[] = [];
  const n = src.length;
  let i = 0;
  let line = firstLine;
  const regexAllowed = () => {
    const p = out[out.length - 1];
    if (!p) return true;
    if (p.t === 'id') return EXPR_KEYWORDS.has(p.v);
    if (p.t === 'p') return !(p.v === ')' || p.v === ']' || p.v === '}');
    return false;
  };
  // After a quote at i: the index of the closing quote (or of the end of the line).
  const stringEnd = (q: string, from: number) => {
    let j = from;
    while (j < n && src[j] !== q && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
    return j;
  };
  // A template literal from after its opening backtick: its text (null when it has ${}), and the
  // tokens of its ${} expressions, each in parentheses.
  const template = (): { text: string | null; inner: Tok[] } => {
    const start = i;
    const inner: Tok[] = [];
    let plain = true;
    while (i < n) {
      const c = src[i]!;
      if (c === '\\') i += 2;
      else if (c === '`') {
        i++;
        return { text: plain ? src.slice(start, i - 1) : null, inner };
      } else if (c === '$' && src[i + 1] === '{') {
        plain = false;
        i += 2;
        const exprStart = i;
        const exprLine = line;
        let depth = 1;
        while (i < n) {
          const d = src[i]!;
          if (d === '\n') line++;
          if (d === '{') depth++;
          else if (d === '}' && --depth === 0) break;
          else if (d === '`') {
            i++;
            template();
            continue;
          } else if (d === "'" || d === '"') i = stringEnd(d, i + 1);
          i++;
        }
        inner.push({ t: 'p', v: '(', line: exprLine }, ...tokenize(src.slice(exprStart, i), exprLine), {
          t: 'p',
          v: ')',
          line,
        });
        i++;
      } else {
        if (c === '\n') line++;
        i++;
      }
    }
    return { text: plain ? src.slice(start) : null, inner };
  };
  while (i < n) {
    const c = src[i]!;
    const startLine = line;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++;
      i = stop;
    } else if (c === "'" || c === '"') {
      const j = stringEnd(c, i + 1);
      out.push({ t: 'str', v: src.slice(i + 1, j), line: startLine });
      i = j + 1;
    } else if (c === '`') {
      i++;
      const { text, inner } = template();
      out.push(text === null ? { t: 'tpl', v: '', line: startLine } : { t: 'str', v: text, line: startLine }, ...inner);
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(src[j]!)) j++;
      out.push({ t: 'id', v: src.slice(i, j), line });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w.]/.test(src[j]!)) j++;
      out.push({ t: 'num', v: src.slice(i, j), line });
      i = j;
    } else if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let cls = false;
      while (j < n && src[j] !== '\n') {
        const d = src[j]!;
        if (d === '\\') j++;
        else if (d === '[') cls = true;
        else if (d === ']') cls = false;
        else if (d === '/' && !cls) break;
        j++;
      }
      j++;
      while (j < n && /[a-z]/.test(src[j]!)) j++;
      out.push({ t: 'regex', v: src.slice(i, j), line });
      i = j;
    } else {
      out.push({ t: 'p', v: c, line });
      i++;
    }
  }
  return out;
}

const isDot = (t: Tok | undefined) => t?.t === 'p' && t.v === '.';
/** toks[k] is a property (`a.b`, `a?.b`), not a name of its own (`...b` is a spread). */
const isMember = (toks: Tok[], k: number) => isDot(toks[k - 1]) && !isDot(toks[k - 2]);
const isId = (t: Tok | undefined, v: string) => t?.t === 'id' && t.v === v;
const isP = (t: Tok | undefined, v: string) => t?.t === 'p' && t.v === v;

/** Every `import … from`, `export … from`, `import 'x'`, `import(…)` and `require(…)` in a source text. */
export function importsOf(text: string): ImportRef[] {
  return importsIn(tokenize(text));
}

function importsIn(toks: Tok[]): ImportRef[] {
  const out: ImportRef[] = [];
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.t === 'str') {
      const prev = toks[k - 1];
      if ((isId(prev, 'from') || isId(prev, 'import')) && !isMember(toks, k - 1))
        out.push({ spec: t.v, line: t.line, kind: 'static' });
    } else if ((isId(t, 'import') || isId(t, 'require')) && !isMember(toks, k) && isP(toks[k + 1], '(')) {
      const arg = toks[k + 2];
      const end = toks[k + 3];
      const literal = arg?.t === 'str' && (isP(end, ')') || isP(end, ','));
      out.push({
        spec: literal ? arg.v : null,
        line: t.line,
        kind: t.v === 'import' ? 'dynamic' : 'require',
      });
    }
  }
  return out;
}

/** Lines where the text reads `process.env` (or `process?.env`, `process['env']`). */
export function envReadsOf(text: string): number[] {
  return envReadsIn(tokenize(text));
}

function envReadsIn(toks: Tok[]): number[] {
  const lines: number[] = [];
  for (let k = 0; k < toks.length; k++) {
    if (!isId(toks[k], 'process') || isMember(toks, k)) continue;
    const a = toks[k + 1];
    const b = toks[k + 2];
    const c = toks[k + 3];
    if (
      (isDot(a) && isId(b, 'env')) ||
      (isP(a, '?') && isDot(b) && isId(c, 'env')) ||
      (isP(a, '[') && b?.t === 'str' && b.v === 'env')
    )
      lines.push(toks[k]!.line);
  }
  return lines;
}

/** The workspace an import specifier points into ('' for anything outside the product), or undefined for an unknown `@pocketproxy/x`. */
export function targetOf(fromPath: string, spec: string): string | undefined {
  if (spec.startsWith('@pocketproxy/')) {
    const name = spec.split('/')[1]!;
    if ((PACKAGES as readonly string[]).includes(name)) return `packages/${name}`;
    if ((APPS as readonly string[]).includes(name)) return `apps/${name}`;
    return undefined;
  }
  if (spec.startsWith('./') || spec.startsWith('../')) {
    const resolved = posix.normalize(posix.join(posix.dirname(fromPath), spec));
    return resolved.startsWith('../') ? '' : workspaceOf(resolved);
  }
  return '';
}

export interface SourceFile {
  /** Repository-relative, with forward slashes. */
  path: string;
  text: string;
}

/** Every way `file` breaks the dependency rules; [] when it keeps them. */
export function checkFile(file: SourceFile): Violation[] {
  const { path, text } = file;
  const ws = workspaceOf(path);
  const part = partOf(path);
  const out: Violation[] = [];
  const v = (line: number, rule: Violation['rule'], message: string) => out.push({ path, line, rule, message });
  if (part === 'tool') return out; // scripts/ (repository tooling) may import anything
  const isPackage = ws.startsWith('packages/');
  const isLab = ws === 'packages/testkit';
  const toks = tokenize(text);
  for (const ref of importsIn(toks)) {
    if (ref.spec === null) {
      // A library's hidden dependency; the apps' bin launchers load their own bundle this way.
      if (part === 'src' && isPackage)
        v(ref.line, 'computed-import', `${ref.kind} of a computed name: the rules cannot see what it loads`);
      continue;
    }
    const target = targetOf(path, ref.spec);
    if (target === undefined) {
      v(ref.line, 'layer', `imports ${ref.spec}, which is no workspace of this repository`);
      continue;
    }
    if (target === '') {
      const ext = EXTERNALS[ws];
      if (part === 'src' && ext && !ext.allowed(ref.spec)) v(ref.line, 'external', `imports ${ref.spec}: ${ext.why}`);
      continue;
    }
    if (target === ws) continue;
    const byPath = ref.spec.startsWith('.');
    if (byPath && target !== 'scripts')
      v(ref.line, 'by-path', `reaches into ${target} by path (${ref.spec}); import it by its package name`);
    if (target === 'scripts') {
      if (part === 'src') v(ref.line, 'layer', `product code imports repository tooling (${ref.spec})`);
      continue;
    }
    const targetIsApp = target.startsWith('apps/');
    if (targetIsApp) {
      if (isLab && part !== 'src') continue; // the lab's tests and benches drive the apps
      v(
        ref.line,
        isPackage ? 'layer' : 'app-to-app',
        isPackage
          ? `${ws} imports the app ${ref.spec}: packages never import apps`
          : `${ws} imports the app ${ref.spec}: apps share code only through packages`,
      );
      continue;
    }
    if (part !== 'src') continue; // tests and benches may import any package
    if (target === 'packages/testkit' && !isLab) {
      v(ref.line, 'testkit-in-src', `${ws} src imports the lab (${ref.spec}); only tests and benches may`);
      continue;
    }
    if (!(LAYERS[ws] ?? []).includes(target))
      v(
        ref.line,
        'layer',
        `${ws} imports ${ref.spec}; it may import only ` +
          ((LAYERS[ws] ?? []).map((t) => `@pocketproxy/${t.split('/')[1]}`).join(', ') || 'nothing of the product'),
      );
  }
  if (part === 'src' && isPackage && !isLab)
    for (const line of envReadsIn(toks))
      v(line, 'process-env', 'reads process.env in a package: configuration comes in from the app, as an option');
  if (part === 'src')
    for (const name of FORBIDDEN_GLOBALS[ws] ?? []) {
      const t = toks.find((x) => x.t === 'id' && x.v === name);
      if (t) v(t.line, 'global', `uses ${name}: ${ws} owns no timers`);
    }
  return out;
}
