// Which network interface belongs to which device of the farm, and whether it can carry traffic.
//
//   phone: adb's USB path (`usb:1-1.2` -> '1-1.2') is the parent of the phone's USB interfaces; its
//          tethering interface (RNDIS / NCM: usb0, enx..., rndis0) is the net device whose
//          <sysfs>/class/net/<if>/device link points at one of them ('.../1-1.2/1-1.2:1.0').
//          The kernel names the interface, never the phone: only this link ties the two together.
//   modem: ModemManager names the connected bearer's interface (wwan0, ...): nothing to look up.
//
// The sysfs root is a parameter (`--sysfs-root`): the lab builds a tree of the same links for its
// veths. Everything here reads; nothing configures.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';

export const DEFAULT_SYSFS_ROOT = '/sys';

/** Interface names the kernel accepts and we pass to `ip` and SO_BINDTODEVICE. */
export const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** A USB path as adb prints it after `usb:` (bus-port[.port...]). */
export const USB_PATH = /^\d+-\d+(\.\d+)*$/;

/**
 * True when a sysfs device path (the target of class/net/<if>/device) is an interface of the USB
 * device at `usb`: one of its components is `<usb>:<config>.<interface>`. '1-1.2' does not match
 * '1-1.20:1.0' nor the hub '1-1'.
 */
export function isInterfaceOfUsb(devicePath: string, usb: string): boolean {
  return devicePath.split('/').some((c) => {
    const i = c.indexOf(':');
    return i > 0 && c.slice(0, i) === usb && /^\d+\.\d+$/.test(c.slice(i + 1));
  });
}

/** The net interface(s) of the USB device `usb` (sorted; usually one). */
export async function phoneInterfaces(usb: string, sysfsRoot = DEFAULT_SYSFS_ROOT): Promise<string[]> {
  if (!USB_PATH.test(usb)) return [];
  const dir = join(sysfsRoot, 'class', 'net');
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    if (!IFNAME.test(n)) continue;
    const target = await fs.readlink(join(dir, n, 'device')).catch(() => null);
    if (target && isInterfaceOfUsb(target, usb)) out.push(n);
  }
  return out.sort();
}

export interface LinkState {
  /** The interface exists (in sysfs, or it has addresses). */
  exists: boolean;
  /** operstate up, or unknown (raw-IP modems and some tethering drivers never say up). */
  up: boolean;
  /** Its first IPv4 address; customers' traffic and the tunnel leave from it. */
  ipv4?: string;
  operstate?: string;
}

/**
 * The link's state: operstate from <sysfs>/class/net/<if>/operstate (then from /sys itself, where a
 * lab's tree has no such file), the address from the interface list.
 */
export async function linkState(ifname: string, sysfsRoot = DEFAULT_SYSFS_ROOT): Promise<LinkState> {
  if (!IFNAME.test(ifname)) return { exists: false, up: false };
  let operstate: string | undefined;
  for (const root of sysfsRoot === DEFAULT_SYSFS_ROOT ? [sysfsRoot] : [sysfsRoot, DEFAULT_SYSFS_ROOT]) {
    const s = await fs.readFile(join(root, 'class', 'net', ifname, 'operstate'), 'utf8').catch(() => null);
    if (s !== null) {
      operstate = s.trim();
      break;
    }
  }
  const addrs = os.networkInterfaces()[ifname] ?? [];
  const ipv4 = addrs.find((a) => a.family === 'IPv4')?.address;
  const exists = operstate !== undefined || addrs.length > 0;
  return {
    exists,
    up: exists && (operstate === undefined || operstate === 'up' || operstate === 'unknown'),
    ...(ipv4 ? { ipv4 } : {}),
    ...(operstate ? { operstate } : {}),
  };
}

/** `usb:1-1.2` or `1-1.2` -> '1-1.2'; anything else -> undefined. */
export function usbPathOf(s: string | undefined): string | undefined {
  if (!s) return undefined;
  const p = s.startsWith('usb:') ? s.slice(4) : s;
  return USB_PATH.test(p) ? p : undefined;
}
