// Starts the "internet" services inside `inet` as child processes (node + tsx running the scripts
// in ./services/), and waits — bounded — until each one is listening.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labError } from './errors.js';
import { INET } from './plan.js';
import { LabProcess } from './process.js';
import { runChecked } from './run.js';

const SERVICES_DIR = fileURLToPath(new URL('./services/', import.meta.url));
export const TSX_LOADER = fileURLToPath(import.meta.resolve('tsx'));

export interface TlsMaterial {
  certPath: string;
  keyPath: string;
  names: string[];
}

/** A self-signed certificate for every lab DNS name (OpenSSL refuses a bare `*.test` wildcard). */
export async function makeCertificate(dir: string, names: readonly string[]): Promise<TlsMaterial> {
  const certPath = join(dir, 'lab-cert.pem');
  const keyPath = join(dir, 'lab-key.pem');
  const san = [...names.map((n) => `DNS:${n}`), `IP:${INET.servicesIp}`].join(',');
  await runChecked(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '7',
      '-subj',
      '/CN=echo.test/O=PocketProxy lab',
      '-addext',
      `subjectAltName=${san}`,
    ],
    { timeoutMs: 15_000 },
  );
  return { certPath, keyPath, names: [...names] };
}

/** argv that runs one of our TypeScript scripts with node + tsx, independent of the cwd. */
export function nodeTsArgv(script: string, args: readonly string[]): [string, string[]] {
  return [process.execPath, ['--import', TSX_LOADER, script, ...args]];
}

function serviceEnv(): NodeJS.ProcessEnv {
  // The caller's NODE_OPTIONS (e.g. `--import tsx` of the test runner) may not resolve from here.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

export async function startInetServices(
  inetNs: string,
  tls: TlsMaterial,
  records: Record<string, string>,
  timeoutMs = 15_000,
): Promise<LabProcess[]> {
  const specs: { name: string; script: string; args: string[] }[] = [
    {
      name: 'http',
      script: 'http-echo.ts',
      args: [
        '--host',
        '0.0.0.0',
        '--http-port',
        String(INET.httpPort),
        '--https-port',
        String(INET.httpsPort),
        '--cert',
        tls.certPath,
        '--key',
        tls.keyPath,
      ],
    },
    // UDP must be bound to the service address: a wildcard socket answers from the address facing
    // the client (e.g. 198.18.n.1), which the client's carrier NAT then does not match and drops.
    {
      name: 'echo',
      script: 'echo.ts',
      args: ['--host', INET.servicesIp, '--echo-port', String(INET.echoPort), '--whoami-port', String(INET.whoamiPort)],
    },
    {
      name: 'dns',
      script: 'dns-server.ts',
      args: ['--host', INET.dnsIp, '--port', String(INET.dnsPort), '--records', JSON.stringify(records)],
    },
  ];
  const procs = specs.map((s) => {
    const [cmd, args] = nodeTsArgv(join(SERVICES_DIR, s.script), s.args);
    // stdin stays an open pipe: when we die, it closes and the service exits (see lifecycle.ts).
    return { spec: s, proc: new LabProcess(inetNs, cmd, args, { env: serviceEnv(), stdin: 'pipe' }) };
  });
  const results = await Promise.allSettled(
    procs.map(({ spec, proc }) => proc.waitForLine(`ready ${spec.name}`, timeoutMs)),
  );
  const failed = results.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    const reason = (results[failed] as PromiseRejectedResult).reason as Error;
    await Promise.all(procs.map(({ proc }) => proc.stop(500)));
    throw labError(
      'PP_ERR_LAB_SERVICE_START',
      { service: procs[failed]!.spec.name, reason: reason.message },
      { cause: reason },
    );
  }
  return procs.map((p) => p.proc);
}
