// Pushed commands waiting for the device's 0x06 ack. UDP may lose a push, so an unacknowledged
// command is pushed once more after `repushMs` if the device is still connected; after that the
// heartbeat path (the API hands undelivered commands out in heartbeat answers) takes over.
import type { JsonMessage } from '@pocketproxy/protocol';

interface Pending {
  deviceId: string;
  message: JsonMessage;
  sentAt: number;
  repushed: boolean;
}

export class PendingCommands {
  private readonly pending = new Map<string, Pending>();
  constructor(
    private readonly repushMs = 5_000,
    private readonly max = 10_000,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  sent(id: string, deviceId: string, message: JsonMessage, now: number): void {
    this.pending.delete(id);
    if (this.pending.size >= this.max) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(id, { deviceId, message, sentAt: now, repushed: false });
  }

  /** True when this ack settled a command we were waiting on. */
  acked(id: string, deviceId: string): boolean {
    const p = this.pending.get(id);
    if (!p || p.deviceId !== deviceId) return false;
    this.pending.delete(id);
    return true;
  }

  forgetDevice(deviceId: string): void {
    for (const [id, p] of this.pending) if (p.deviceId === deviceId) this.pending.delete(id);
  }

  /** Commands due for their one re-push; the rest that are past it are forgotten. */
  due(now: number, isUp: (deviceId: string) => boolean): { id: string; deviceId: string; message: JsonMessage }[] {
    const out: { id: string; deviceId: string; message: JsonMessage }[] = [];
    for (const [id, p] of this.pending) {
      if (now - p.sentAt < this.repushMs) continue;
      if (p.repushed || !isUp(p.deviceId)) {
        this.pending.delete(id);
        continue;
      }
      p.repushed = true;
      p.sentAt = now;
      out.push({ id, deviceId: p.deviceId, message: p.message });
    }
    return out;
  }
}
