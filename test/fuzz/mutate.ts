// A seeded mutator of our own (no fuzzing package): input i of a target is a pure function of
// (seed, target, i), so a finding is replayed from three numbers.

/** splitmix32: small, fast, and good enough to pick mutations. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Values that sit on the edges parsers get wrong. */
const INTERESTING = [
  0, 1, 2, 3, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
];

/** Byte strings that mean something to one of the formats: pickle opcodes, zip and gzip magic. */
const TOKENS = [
  "]",
  ")",
  "}",
  "(",
  "a",
  "e",
  "s",
  "u",
  "t",
  "0",
  "2",
  ".",
  "h\x00",
  "q\x00",
  "r\x00\x00\x00\x00",
  "j\x00\x00\x00\x00",
  "\x95\xff\x00\x00\x00\x00\x00\x00\x00",
  "X\xff\xff\xff\x7f",
  "X\x02\x00\x00\x00\xc3\x28",
  "G\x40\x08\x00\x00\x00\x00\x00\x00",
  "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f",
  "K\xff",
  "J\xff\xff\xff\xff",
  "R",
  "\x81",
  "b",
  "c__builtin__\nset\n",
  "PK\x03\x04",
  "PK\x01\x02",
  "PK\x05\x06",
  "\x1f\x8b\x08\x00",
  "\x00\x00\x08\x03",
  '{"',
  '"shape":[',
  "'shape': (",
].map((token) => Uint8Array.from(token, (c) => c.charCodeAt(0)));

/** `input` with 1 to 4 random mutations (byte, integer and block level, splices between seeds). */
export function mutate(seeds: readonly Uint8Array[], seed: number, target: string, iteration: number): Uint8Array {
  const next = rng((seed ^ hashName(target) ^ Math.imul(iteration + 1, 0x27d4eb2d)) >>> 0);
  const below = (n: number): number => (n <= 0 ? 0 : next() % n);
  let data: Uint8Array = Uint8Array.from(seeds[below(seeds.length)]!);
  const count = 1 + below(4);
  for (let m = 0; m < count; m++) {
    const at = below(data.length);
    switch (below(12)) {
      case 0: // flip one bit
        if (data.length > 0) data[at]! ^= 1 << below(8);
        break;
      case 1: // a random byte
        if (data.length > 0) data[at] = below(256);
        break;
      case 2: // an interesting 8-bit value
        if (data.length > 0) data[at] = INTERESTING[below(9)]!;
        break;
      case 3: {
        // an interesting 16/32/64-bit integer, either byte order
        const width = [2, 4, 8][below(3)]!;
        if (at + width > data.length) break;
        const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
        const value = INTERESTING[below(INTERESTING.length)]!;
        const little = below(2) === 0;
        if (width === 2) dv.setUint16(at, value & 0xffff, little);
        else if (width === 4) dv.setUint32(at, value >>> 0, little);
        else dv.setBigUint64(at, below(4) === 0 ? 0xffffffffffffffffn : BigInt(value), little);
        break;
      }
      case 4: // truncate
        data = data.subarray(0, at);
        break;
      case 5: {
        // delete a block
        const length = 1 + below(Math.min(64, data.length - at));
        data = concat(data.subarray(0, at), data.subarray(at + length));
        break;
      }
      case 6: {
        // insert random bytes
        const block = Uint8Array.from({ length: 1 + below(16) }, () => below(256));
        data = concat(data.subarray(0, at), block, data.subarray(at));
        break;
      }
      case 7: {
        // duplicate a block (repeats records, opcodes, dimensions)
        const length = 1 + below(Math.min(128, Math.max(1, data.length - at)));
        data = concat(data.subarray(0, at + length), data.subarray(at, at + length), data.subarray(at + length));
        break;
      }
      case 8: {
        // copy a block over another place
        const from = below(data.length);
        const length = below(Math.min(32, data.length - Math.max(from, at)));
        data.copyWithin(at, from, from + length);
        break;
      }
      case 10: {
        // insert a token of one of the formats
        const token = TOKENS[below(TOKENS.length)]!;
        data = concat(data.subarray(0, at), token, data.subarray(at));
        break;
      }
      case 11: {
        // repeat a short block many times (deep nesting, many containers, long runs)
        const length = 1 + below(Math.min(8, Math.max(1, data.length - at)));
        const block = data.slice(at, at + length);
        const times = 1 + below(below(2) === 0 ? 100 : 200_000);
        const repeated = new Uint8Array(block.length * times);
        for (let k = 0; k < times; k++) repeated.set(block, k * block.length);
        data = concat(data.subarray(0, at), repeated, data.subarray(at));
        break;
      }
      default: {
        // splice with another seed
        const other = seeds[below(seeds.length)]!;
        const cut = below(other.length);
        data = concat(data.subarray(0, at), other.subarray(cut));
      }
    }
  }
  return data;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
