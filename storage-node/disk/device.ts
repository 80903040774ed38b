// Device emulation: what makes the `hdd` tier an HDD on a machine without one. One emulated head that every
// value transfer queues behind, paying a seek plus its bytes at the set rate. Off (no object at all) by default.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { SatchelError } from '../../proto/index.ts';

export interface DeviceEmulation {
  /** Added to every value read and write (one seek each). */
  seekMs?: number;
  /** Transfer rate of the one emulated head; reads and writes queue behind each other. */
  bandwidthBytesPerSec?: number;
}

export class EmulatedDevice {
  private readonly seekMs: number;
  private readonly bytesPerMs: number;
  private freeAt = 0;

  /** The device `options` describe, or null when they emulate nothing (the engine then skips the call). */
  static from(options: DeviceEmulation | undefined): EmulatedDevice | null {
    const device = new EmulatedDevice(options ?? {});
    return device.seekMs > 0 || device.bytesPerMs > 0 ? device : null;
  }

  constructor(options: DeviceEmulation) {
    this.seekMs = options.seekMs ?? 0;
    const bandwidth = options.bandwidthBytesPerSec ?? 0;
    if (!(this.seekMs >= 0) || !(bandwidth >= 0))
      throw new SatchelError('BAD_REQUEST', 'emulated seek time and bandwidth must not be negative');
    this.bytesPerMs = bandwidth / 1000;
  }

  /** One head: each transfer waits for the ones before it, then takes a seek plus its bytes at the set rate. */
  async transfer(bytes: number): Promise<void> {
    const now = performance.now();
    const cost = this.seekMs + (this.bytesPerMs > 0 ? bytes / this.bytesPerMs : 0);
    this.freeAt = Math.max(now, this.freeAt) + cost;
    const wait = this.freeAt - now;
    if (wait >= 1) await sleep(Math.round(wait));
  }
}
