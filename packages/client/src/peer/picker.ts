import type { Bitfield } from './bitfield.js';

/** A piece's state in one download. */
const NEEDED = 0;
const REQUESTED = 1;
const DONE = 2;
/** Most copies of one piece asked for at once: the first, and one more in the end game. */
const MAX_COPIES = 2;

/**
 * Chooses which piece to ask a peer for: **rarest first** (the piece held by
 * the fewest connected peers), ties broken by a random order fixed when the
 * download starts, so that downloaders spread over the pieces instead of all
 * asking for piece 0. With `block` > 0, the random order is within blocks
 * of that many pieces, taken in file order (block 0 before block 1 …), so
 * that pieces of equal rarity come nearly in file order. A piece is requested from one peer at a time
 * until every missing piece has been asked for: then (**end game**) `pickAgain`
 * hands a piece already asked of a peer that may be slow or hung to a
 * second peer, and the first copy verified wins. A piece whose every
 * request failed (peer gone, bad hash) goes back to "needed". Pure: the
 * randomness is injected.
 *
 * Cost: `pick` scans the pieces still missing in rarity order, skipping
 * requested ones and those the peer lacks — O(missing) at worst, a few
 * thousand steps for a 1 GiB file in 512 KiB pieces.
 */
export class PiecePicker {
  readonly count: number;
  private readonly state: Uint8Array;
  /** Copies of each requested piece in play: asked for, or arrived and being written. */
  private readonly copies: Uint8Array;
  private readonly availability: Uint32Array;
  private readonly tieBreak: Float64Array;
  private order: number[] = [];
  private dirty = true;
  private doneCount = 0;
  private requestedCount = 0;

  /** `block`: 0 (default) = one random order over the whole file; n = random within consecutive blocks of n pieces. */
  constructor(count: number, done?: Bitfield, random: () => number = Math.random, block = 0) {
    this.count = count;
    this.state = new Uint8Array(count);
    this.copies = new Uint8Array(count);
    this.availability = new Uint32Array(count);
    this.tieBreak = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      this.tieBreak[i] = (block > 0 ? Math.floor(i / block) : 0) + random();
      if (done?.get(i)) {
        this.state[i] = DONE;
        this.doneCount++;
      }
    }
  }

  /** Pieces not yet verified (requested ones included). */
  get remaining(): number {
    return this.count - this.doneCount;
  }

  /** Pieces nobody has been asked for yet and not done. */
  get unrequested(): number {
    return this.count - this.doneCount - this.requestedCount;
  }

  get done(): number {
    return this.doneCount;
  }

  isDone(index: number): boolean {
    return this.state[index] === DONE;
  }

  /** How many connected peers hold piece `index`. */
  availabilityOf(index: number): number {
    return this.availability[index] ?? 0;
  }

  /** A peer with these pieces joined. */
  addPeer(have: Bitfield): void {
    this.adjust(have, 1);
  }

  /** A peer with these pieces left (or was banned). */
  removePeer(have: Bitfield): void {
    this.adjust(have, -1);
  }

  /** A peer announced one more piece. */
  addPiece(index: number): void {
    this.availability[index] = (this.availability[index] ?? 0) + 1;
    this.dirty = true;
  }

  /**
   * The next piece to request from a peer holding `peerHas`, already marked
   * requested; -1 when that peer has nothing this download still needs.
   */
  pick(peerHas: Bitfield): number {
    if (this.dirty) this.reorder();
    for (const index of this.order) {
      if (this.state[index] === NEEDED && peerHas.get(index)) {
        this.state[index] = REQUESTED;
        this.copies[index] = 1;
        this.requestedCount++;
        return index;
      }
    }
    return -1;
  }

  /**
   * End game: once no missing piece is left unrequested, a piece already
   * asked of another peer, for a peer holding `peerHas` (rarest first), one
   * more copy counted; -1 before the end game, or when there is none.
   * `skip` excludes the pieces this peer is already fetching.
   */
  pickAgain(peerHas: Bitfield, skip: (index: number) => boolean): number {
    if (this.unrequested > 0) return -1;
    if (this.dirty) this.reorder();
    for (const index of this.order) {
      if (this.state[index] === REQUESTED && (this.copies[index] as number) < MAX_COPIES && peerHas.get(index) && !skip(index)) {
        this.copies[index] = (this.copies[index] as number) + 1;
        return index;
      }
    }
    return -1;
  }

  /** A copy of a requested piece came back unusable, or its peer went away: when it was the last copy in play, ask again (someone else). */
  release(index: number): void {
    if (this.state[index] !== REQUESTED) return;
    const left = (this.copies[index] as number) - 1; // a requested piece has at least one copy in play
    this.copies[index] = left;
    if (left > 0) return;
    this.state[index] = NEEDED;
    this.requestedCount--;
  }

  /** A piece was verified and written. */
  complete(index: number): void {
    const s = this.state[index];
    if (s === DONE || s === undefined) return;
    if (s === REQUESTED) this.requestedCount--;
    this.state[index] = DONE;
    this.copies[index] = 0;
    this.doneCount++;
    // Done pieces are dropped from the scan order at the next reorder.
    if (this.doneCount % 256 === 0) this.dirty = true;
  }

  /** Whether any piece still needed is held by a peer with `peerHas`. */
  wants(peerHas: Bitfield): boolean {
    for (let i = 0; i < this.count; i++) if (this.state[i] !== DONE && peerHas.get(i)) return true;
    return false;
  }

  private adjust(have: Bitfield, delta: 1 | -1): void {
    for (let i = 0; i < this.count; i++) {
      if (have.get(i)) this.availability[i] = Math.max(0, (this.availability[i] ?? 0) + delta);
    }
    this.dirty = true;
  }

  private reorder(): void {
    const order: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.state[i] !== DONE) order.push(i);
    const a = this.availability;
    const r = this.tieBreak;
    order.sort((x, y) => (a[x] as number) - (a[y] as number) || (r[x] as number) - (r[y] as number));
    this.order = order;
    this.dirty = false;
  }
}
