/**
 * Which pieces a peer (or a download) holds: bit `i` is piece `i`, most
 * significant bit first in each byte (piece 0 is 0x80 of byte 0), as in
 * BitTorrent. On the wire it is lower-case hex, ceil(pieces/8) bytes; the
 * spare bits of the last byte are 0. Pure.
 */
export class Bitfield {
  readonly length: number;
  private readonly bytes: Uint8Array;
  private ones = 0;

  constructor(length: number, bytes?: Uint8Array) {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`bad bitfield length ${length}`);
    this.length = length;
    this.bytes = new Uint8Array(Math.ceil(length / 8));
    if (bytes) {
      this.bytes.set(bytes.subarray(0, this.bytes.length));
      for (let i = 0; i < length; i++) if (this.get(i)) this.ones++;
    }
  }

  /** A bitfield with every bit set. */
  static full(length: number): Bitfield {
    const b = new Bitfield(length);
    for (let i = 0; i < length; i++) b.set(i);
    return b;
  }

  /** Parses the wire form; undefined when the hex is malformed, of the wrong length, or has spare bits set. */
  static fromHex(length: number, hex: string): Bitfield | undefined {
    const bytesLength = Math.ceil(length / 8);
    if (hex.length !== bytesLength * 2 || !/^[0-9a-f]*$/.test(hex)) return undefined;
    const bytes = Buffer.from(hex, 'hex');
    const spare = bytesLength * 8 - length;
    if (spare > 0 && ((bytes[bytesLength - 1] as number) & ((1 << spare) - 1)) !== 0) return undefined;
    return new Bitfield(length, bytes);
  }

  get count(): number {
    return this.ones;
  }

  get complete(): boolean {
    return this.ones === this.length;
  }

  get(index: number): boolean {
    if (index < 0 || index >= this.length) return false;
    return (((this.bytes[index >> 3] as number) >> (7 - (index & 7))) & 1) === 1;
  }

  set(index: number): void {
    this.check(index);
    if (this.get(index)) return;
    this.bytes[index >> 3] = (this.bytes[index >> 3] as number) | (0x80 >> (index & 7));
    this.ones++;
  }

  clear(index: number): void {
    this.check(index);
    if (!this.get(index)) return;
    this.bytes[index >> 3] = (this.bytes[index >> 3] as number) & ~(0x80 >> (index & 7));
    this.ones--;
  }

  toHex(): string {
    return Buffer.from(this.bytes).toString('hex');
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) throw new RangeError(`bit ${index} out of 0..${this.length - 1}`);
  }
}
