/**
 * The forwarded ids a node has taken from its durable inbox lately, so that an entry read again (after a
 * reconnect, or sent again by a commit retry) is delivered once. An id is `<incarnation>:<seq>`, with `seq`
 * counting up per origin incarnation: one bitmap per origin over its last {@linkcode WINDOW} sequence numbers
 * (32 KiB each). The set of 65,536 id strings it replaces cost about 2 µs per id on the 2-core test machine (2-9%
 * of node B's CPU samples in bench cluster cross-qos1); the bitmap about 0.2 µs, with no string hashed but the
 * origin's, and only when the origin changes.
 *
 * @module
 */

/** Sequence numbers remembered per origin (a bit each). */
const WINDOW = 1 << 18;
const WORDS = WINDOW >>> 5;
/** Origins remembered; the oldest is forgotten first (a node that left long ago). */
const MAX_ORIGINS = 64;

/** One origin's window: the highest sequence number seen and a bit per number up to {@linkcode WINDOW} below. */
class OriginWindow {
  readonly bits = new Uint32Array(WORDS);
  max = 0;

  /** Marks `seq`; false when it was marked already. An id older than the window counts as new (forgotten). */
  mark(seq: number): boolean {
    if (seq > this.max) {
      this.#clear(this.max + 1, seq);
      this.max = seq;
    } else if (seq <= this.max - WINDOW) return true;
    const word = (seq >>> 5) % WORDS;
    const bit = 1 << (seq & 31);
    if ((this.bits[word]! & bit) !== 0) return false;
    this.bits[word]! |= bit;
    return true;
  }

  /** Clears the bits of `from..to` (they now stand for new numbers). */
  #clear(from: number, to: number): void {
    if (to - from >= WINDOW) {
      this.bits.fill(0);
      return;
    }
    for (let seq = from; seq <= to; seq++) {
      if ((seq & 31) === 0 && to - seq >= 31) {
        this.bits[(seq >>> 5) % WORDS] = 0;
        seq += 31;
      } else this.bits[(seq >>> 5) % WORDS]! &= ~(1 << (seq & 31));
    }
  }
}

/** See the module doc. */
export class SeenIds {
  readonly #origins = new Map<string, OriginWindow>();
  /** The origin of the last id (a batch comes from one node). */
  #lastOrigin = "";
  #last: OriginWindow | undefined;
  /** Ids not of the `<origin>:<seq>` form (none are written so; kept exact anyway). */
  readonly #other = new Set<string>();

  /** Notes `id`; false when it was seen already. */
  remember(id: string): boolean {
    const colon = id.lastIndexOf(":");
    const seq = colon < 0 ? -1 : digits(id, colon + 1);
    if (seq < 1) {
      if (this.#other.has(id)) return false;
      if (this.#other.size >= WINDOW) this.#other.clear();
      this.#other.add(id);
      return true;
    }
    let window = this.#last;
    const last = this.#lastOrigin;
    if (window === undefined || colon !== last.length || !id.startsWith(last)) {
      const origin = id.slice(0, colon);
      window = this.#origins.get(origin);
      if (window !== undefined) {
        // Most recently used last: the one forgotten first is the one not heard from the longest.
        this.#origins.delete(origin);
        this.#origins.set(origin, window);
      } else {
        if (this.#origins.size >= MAX_ORIGINS) this.#origins.delete(this.#origins.keys().next().value!);
        this.#origins.set(origin, window = new OriginWindow());
      }
      this.#lastOrigin = origin;
      this.#last = window;
    }
    return window.mark(seq);
  }
}

/** The decimal number at `from` to the end of `text`; -1 when it is not one (or too long to be exact). */
function digits(text: string, from: number): number {
  const end = text.length;
  if (from >= end || end - from > 15) return -1;
  let n = 0;
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}
