/**
 * Packet identifiers (section 2.2.1): non-zero 16-bit values, unique among a client's unacknowledged PUBLISH
 * (QoS 1/2), SUBSCRIBE and UNSUBSCRIBE packets [MQTT-2.2.1-3 (5.0)].
 *
 * @module
 */

const MAX_ID = 65_535;

/**
 * Hands out free packet identifiers round-robin (so a just-released id is not reused at once, which keeps late
 * acknowledgements from a previous connection from matching a new packet).
 *
 * @example
 * ```ts
 * import { PacketIds } from "./packet_id.ts";
 * const ids = new PacketIds();
 * const a = ids.allocate();
 * const b = ids.allocate();
 * console.assert(a === 1 && b === 2);
 * ids.release(a!);
 * console.assert(ids.inUse === 1);
 * ```
 */
export class PacketIds {
  #used = new Set<number>();
  #next = 1;

  /** Identifiers currently allocated. */
  get inUse(): number {
    return this.#used.size;
  }

  /** A free identifier, or undefined when all 65,535 are in use. */
  allocate(): number | undefined {
    if (this.#used.size >= MAX_ID) return undefined;
    for (;;) {
      const id = this.#next;
      this.#next = id === MAX_ID ? 1 : id + 1;
      if (!this.#used.has(id)) {
        this.#used.add(id);
        return id;
      }
    }
  }

  /** Whether `id` is allocated. */
  has(id: number): boolean {
    return this.#used.has(id);
  }

  /** Frees `id`; freeing an unknown id does nothing. */
  release(id: number): void {
    this.#used.delete(id);
  }

  /** Frees every identifier. */
  clear(): void {
    this.#used.clear();
  }
}
