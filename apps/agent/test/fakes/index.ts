// Helpers around the fake `adb` and `mmcli` executables (see the header of each for what they answer):
// a state directory per test, the devices/modems in it, hooks, and the calls each fake received.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FAKE_ADB = fileURLToPath(new URL('./adb', import.meta.url));
export const FAKE_MMCLI = fileURLToPath(new URL('./mmcli', import.meta.url));

export type AndroidProfile = 'android-8' | 'android-10' | 'android-12' | 'android-14';

export interface FakePhone {
  serial: string;
  state: string;
  usb?: string;
  model?: string;
  product?: string;
  device?: string;
  profile?: AndroidProfile;
  slow_ms?: number;
  missing?: string[];
  /** A rooted phone: the airplane broadcast is allowed. */
  root?: boolean;
  /** USB tethering already on when first seen. */
  tethering?: boolean;
}

export interface FakeModem {
  index: number;
  imei: string;
  model?: string;
  manufacturer?: string;
  operator?: string | null;
  signal?: number;
  tech?: string;
  interface?: string;
  connected?: boolean;
  apn?: string;
  profile?: 'quectel-ec25' | 'huawei-e3372';
  slow_ms?: number;
  fail?: string[];
}

export interface FakeDir {
  dir: string;
  /** Every invocation's argv, oldest first. */
  calls(): Promise<string[][]>;
  /** Per-device mutable state the fake keeps (state/<id>.json), or {} before its first use. */
  state(id: string): Promise<Record<string, unknown>>;
  /** An executable hook: a shell script run by the fake (adb: hooks/<serial>/<event>; mmcli: hooks/<imei>/reconnect). */
  hook(id: string, event: string, script: string): Promise<void>;
  remove(): Promise<void>;
}

async function fakeDir(prefix: string, file: string, content: unknown): Promise<FakeDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, file), JSON.stringify(content));
  return {
    dir,
    async calls() {
      const t = await readFile(join(dir, 'calls.log'), 'utf8').catch(() => '');
      return t
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as string[]);
    },
    async state(id) {
      const f = join(dir, 'state', `${id.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
      return JSON.parse(await readFile(f, 'utf8').catch(() => '{}')) as Record<string, unknown>;
    },
    async hook(id, event, script) {
      const d = join(dir, 'hooks', id);
      await mkdir(d, { recursive: true });
      await writeFile(join(d, event), `#!/bin/sh\n${script}\n`);
      await chmod(join(d, event), 0o755);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A state directory for the fake adb with these phones; set FAKE_ADB_DIR to `dir` for the fake to use it. */
export async function fakeAdbDir(phones: FakePhone[]): Promise<FakeDir & { setPhones(p: FakePhone[]): Promise<void> }> {
  const d = await fakeDir('pp-fake-adb-', 'devices.json', phones);
  return { ...d, setPhones: (p) => writeFile(join(d.dir, 'devices.json'), JSON.stringify(p)) };
}

/** A state directory for the fake mmcli with these modems; set FAKE_MMCLI_DIR to `dir`. */
export async function fakeMmcliDir(
  modems: FakeModem[],
): Promise<FakeDir & { setModems(m: FakeModem[]): Promise<void> }> {
  const d = await fakeDir('pp-fake-mmcli-', 'modems.json', modems);
  return { ...d, setModems: (m) => writeFile(join(d.dir, 'modems.json'), JSON.stringify(m)) };
}
