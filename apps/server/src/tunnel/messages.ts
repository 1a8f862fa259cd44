// Messages to and from devices over their tunnel sessions: control `config` and `credentials`,
// pushed commands (0x05) and their acks (0x06), and the one re-push of an unacked command.
//
//   API -> push server -> push() -> responder.sendMessage -> datapath -> device
//   device -> datapath -> onMessage() -> ack settles the pending command
import { encodeJsonMessage, MAX_JSON_MESSAGE_LEN, type JsonMessage, type Responder } from '@pocketproxy/protocol';
import type { PendingCommands } from './commands.js';
import type { TunnelLogs } from './context.js';
import type { DataPath } from './datapath.js';
import type { DeviceEntry } from './devices.js';
import type { Subnet } from './ipv4.js';
import type { Endpoint } from './transport.js';

export interface MessagesContext extends TunnelLogs {
  readonly responder: Pick<Responder<Endpoint>, 'sendMessage'>;
  readonly path: Pick<DataPath, 'send'>;
  readonly commands: PendingCommands;
  /** The device's address and gateway in the control `config` message. */
  readonly subnet: Pick<Subnet, 'prefix' | 'relayAddress'>;
  readonly tunnelMtu: number;
  /** The OpenVPN customers' subnet, in `config` when their TCP is carried to devices (SYN stamps). */
  readonly openvpnSubnet?: string;
  readonly devices: { readonly byId: ReadonlyMap<string, DeviceEntry> };
  /** Has a confirmed session: only then is an unacked command pushed again. */
  readonly isUp: (deviceId: string) => boolean;
}

export interface Messages {
  /** False when the device has no session or the message could not be sealed. */
  sendTo(deviceId: string, message: JsonMessage): boolean;
  sendConfig(e: DeviceEntry): void;
  sendCredentials(e: DeviceEntry, items: readonly unknown[]): void;
  onMessage(deviceId: string, m: JsonMessage): void;
  /** sendTo, and a command is remembered until the device acks it. */
  push(deviceId: string, message: JsonMessage): boolean;
  /** Pushes once more the commands still unacked after `repushMs` (from tick). */
  repushDue(t: number): void;
}

export function createMessages(c: MessagesContext): Messages {
  const { now, devLog, logLimit, commands } = c;

  function sendTo(deviceId: string, message: JsonMessage): boolean {
    let ob: ReturnType<MessagesContext['responder']['sendMessage']>;
    try {
      ob = c.responder.sendMessage(deviceId, message, now());
    } catch (err) {
      devLog(deviceId).warn({ err: String(err) }, 'message not sent');
      return false;
    }
    if (!ob) return false;
    c.path.send([ob]);
    return true;
  }

  function sendConfig(e: DeviceEntry): void {
    // A new session's agent may be another (older) one: it says again whether it reads stamps.
    e.synStamps = false;
    sendTo(e.id, {
      kind: 'control',
      control: {
        type: 'config',
        payload: {
          address: `${e.vpnIp}/${c.subnet.prefix}`,
          gateway: c.subnet.relayAddress,
          mtu: c.tunnelMtu,
          ...(c.openvpnSubnet ? { openvpn_subnet: c.openvpnSubnet } : {}),
        },
      },
    });
  }

  /** Credential sync hint: the list when it fits one message, else ask the device to fetch it. */
  function sendCredentials(e: DeviceEntry, items: readonly unknown[]): void {
    const full: JsonMessage = { kind: 'control', control: { type: 'credentials', payload: { items } } };
    let fits = false;
    try {
      fits = encodeJsonMessage(full).length <= MAX_JSON_MESSAGE_LEN;
    } catch {
      fits = false;
    }
    sendTo(e.id, fits ? full : { kind: 'control', control: { type: 'credentials', payload: { refetch: true } } });
  }

  function onMessage(deviceId: string, m: JsonMessage): void {
    const l = devLog(deviceId);
    if (m.kind === 'ack') {
      const settled = commands.acked(m.ack.id, deviceId);
      l.info({ commandId: m.ack.id, status: m.ack.status, settled, error: m.ack.error }, 'command ack');
    } else if (m.kind === 'control') {
      if (m.control.type === 'features') {
        const e = c.devices.byId.get(deviceId);
        const stamps = (m.control.payload as { syn_stamps?: unknown } | undefined)?.syn_stamps === true;
        if (e && e.synStamps !== stamps) {
          e.synStamps = stamps && c.openvpnSubnet !== undefined;
          l.info({ synStamps: e.synStamps }, 'device features');
        }
        return;
      }
      if (logLimit.allow(`ctl:${deviceId}`, now()) !== undefined)
        l.debug({ type: m.control.type }, 'control message from device');
    } else if (logLimit.allow(`cmd:${deviceId}`, now()) !== undefined) {
      l.warn({ commandId: m.command.id }, 'device sent a command frame; ignored');
    }
  }

  function push(deviceId: string, message: JsonMessage): boolean {
    const ok = sendTo(deviceId, message);
    if (ok && message.kind === 'command') commands.sent(message.command.id, deviceId, message, now());
    return ok;
  }

  function repushDue(t: number): void {
    for (const d of commands.due(t, c.isUp)) {
      sendTo(d.deviceId, d.message);
      devLog(d.deviceId).info({ commandId: d.id }, 'command re-pushed (no ack yet)');
    }
  }

  return { sendTo, sendConfig, sendCredentials, onMessage, push, repushDue };
}
