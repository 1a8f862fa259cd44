// Shared by the dashboard's browser tests and bench: a real `pocketproxy up` (embedded database, tunnel
// off, 127.0.0.1 only) serving the built dashboard, a small REST client that plays the admin or a
// device, and Debian's Chromium driven by playwright-core. Builds nothing: the test command builds
// apps/dashboard/out and apps/server/dist first; a missing build is a clear failure, not a skip.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const OUT = join(ROOT, 'apps/dashboard/out');
export const SERVER_BIN = join(ROOT, 'apps/server/bin/pocketproxy.js');
export const SERVER_BUNDLE = join(ROOT, 'apps/server/dist/main.js');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS = join(ROOT, 'test-results/dashboard');
export const ADMIN = { email: 'admin@example.com', password: 'lab-admin-password-1' };

/** Why the builds this needs are missing, or null when both are there. */
export function missingBuilds(): string | null {
  const missing: string[] = [];
  if (!existsSync(join(OUT, 'index.html')))
    missing.push(`${OUT}/index.html (run \`npm run build -w @pocketproxy/dashboard\`)`);
  if (!existsSync(SERVER_BUNDLE)) missing.push(`${SERVER_BUNDLE} (run \`node scripts/build.mjs --no-dashboard\`)`);
  return missing.length ? `dashboard browser tests need the builds first; missing: ${missing.join('; ')}` : null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export type Reply = { status: number; json: any };

export class Server {
  proc!: ChildProcess;
  port = 0;
  dataDir = '';
  output = '';
  /** `extraEnv` is added to the server's environment (e.g. POCKETPROXY_OPENVPN). */
  constructor(private readonly extraEnv: Record<string, string> = {}) {}
  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.dataDir = mkdtempSync(join(tmpdir(), 'pp-dash-'));
    this.port = await freePort();
    this.proc = spawn(process.execPath, [SERVER_BIN, 'up'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        POCKETPROXY_DATA_DIR: this.dataDir,
        POCKETPROXY_API_PORT: String(this.port),
        POCKETPROXY_API_HOST: '127.0.0.1',
        POCKETPROXY_ADMIN_EMAIL: ADMIN.email,
        POCKETPROXY_ADMIN_PASSWORD: ADMIN.password,
        POCKETPROXY_PUBLIC_HOST: '127.0.0.1',
        POCKETPROXY_TUNNEL: 'off',
        POCKETPROXY_LOG_LEVEL: 'warn',
        ...this.extraEnv,
      },
    });
    this.proc.stdout!.on('data', (d) => (this.output += d));
    this.proc.stderr!.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (this.proc.exitCode !== null)
        throw new Error(`pocketproxy up exited (${this.proc.exitCode}):\n${this.output}`);
      try {
        if ((await fetch(`${this.base}/healthz`)).ok) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`pocketproxy up did not become healthy in 90 s:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return this;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  async call(method: string, path: string, body?: unknown, token?: string): Promise<Reply> {
    const res = await fetch(this.base + path, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown = text;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, json };
  }

  /** Like call(), but throws unless the status is 2xx. */
  async ok(method: string, path: string, body?: unknown, token?: string): Promise<any> {
    const r = await this.call(method, path, body, token);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }

  async adminToken(): Promise<string> {
    return (await this.ok('POST', '/api/auth/login', ADMIN)).token;
  }
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * Collects console errors and uncaught page errors. `allowing(re, fn)` tolerates matching console
 * errors while fn runs: Chromium itself logs "Failed to load resource … 409" when a form is refused
 * by the API on purpose.
 */
export class ErrorLog {
  readonly errors: string[] = [];
  private allowed: RegExp[] = [];
  constructor(page: Page) {
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() !== 'error') return;
      // The resource a "Failed to load resource" names is the message's location, not the page.
      const from = m.location().url;
      const text = `console error: ${m.text()} @ ${page.url()}${from && from !== page.url() ? ` (from ${from})` : ''}`;
      if (this.allowed.some((re) => re.test(m.text()))) return;
      this.errors.push(text);
    });
    page.on('pageerror', (e) => this.errors.push(`pageerror: ${e.message} @ ${page.url()}`));
  }
  async allowing<T>(re: RegExp, fn: () => Promise<T>): Promise<T> {
    this.allowed.push(re);
    try {
      return await fn();
    } finally {
      this.allowed.splice(this.allowed.indexOf(re), 1);
    }
  }
  take(): string[] {
    return this.errors.splice(0);
  }
}

export function shotPath(name: string, width: number): string {
  mkdirSync(SHOTS, { recursive: true });
  return join(SHOTS, `${name}-${width}.png`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll fn until it returns a truthy value. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
