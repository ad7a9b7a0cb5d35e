// A small seeded generator for the data pipeline (shuffling, augmentation parameters), kept apart
// from libtorch's global generator on purpose: the loader draws while the training step runs, so a
// shared stream would make results depend on timing. Its state is four 32-bit words that a
// checkpoint can store and restore (`getState`/`setState`).
//
// Algorithm: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/), seeded through
// splitmix32 so that nearby seeds give unrelated streams.

export type RandomState = readonly [number, number, number, number];

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function checkSeed(seed: number, op: string): number {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`${op}: seed must be a non-negative integer, got ${String(seed)}`);
  }
  return seed;
}

export class Random {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;

  /** A generator seeded from a non-negative integer and optional extra words (e.g. an epoch). */
  constructor(seed: number, ...stream: number[]) {
    checkSeed(seed, "Random");
    // Mix the 53-bit seed (high and low words) and the stream words into one 32-bit start value.
    let mixed = splitmix32((seed % 2 ** 32) ^ 0x5bd1e995)();
    mixed = splitmix32(mixed ^ Math.floor(seed / 2 ** 32))();
    for (const word of stream) mixed = splitmix32(mixed ^ (checkSeed(word, "Random") >>> 0))();
    const next = splitmix32(mixed);
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** A generator continuing from a saved state. */
  static fromState(state: RandomState): Random {
    const r = new Random(0);
    r.setState(state);
    return r;
  }

  getState(): RandomState {
    return [this.#s0, this.#s1, this.#s2, this.#s3];
  }

  setState(state: RandomState): void {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)
    ) {
      throw new TypeError(`Random.setState: expected four unsigned 32-bit integers, got ${JSON.stringify(state)}`);
    }
    if (state.every((w) => w === 0)) throw new RangeError("Random.setState: the all-zero state is invalid");
    [this.#s0, this.#s1, this.#s2, this.#s3] = state as [number, number, number, number];
  }

  clone(): Random {
    return Random.fromState(this.getState());
  }

  /** The next unsigned 32-bit integer. */
  nextUint32(): number {
    const s0 = this.#s0;
    const s1 = this.#s1;
    const s2 = this.#s2;
    const s3 = this.#s3;
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    let n2 = (s2 ^ s0) >>> 0;
    let n3 = (s3 ^ s1) >>> 0;
    const n1 = (s1 ^ n2) >>> 0;
    const n0 = (s0 ^ n3) >>> 0;
    n2 = (n2 ^ t) >>> 0;
    n3 = ((n3 << 11) | (n3 >>> 21)) >>> 0;
    this.#s0 = n0;
    this.#s1 = n1;
    this.#s2 = n2;
    this.#s3 = n3;
    return result;
  }

  /** Uniform on [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform on [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }

  /** An integer uniform on [low, high) (high > low), without modulo bias. */
  int(low: number, high: number): number {
    const span = high - low;
    if (!Number.isSafeInteger(span) || span <= 0)
      throw new RangeError(`Random.int: need high > low, got [${low}, ${high})`);
    if (span <= 2 ** 32) {
      const limit = 2 ** 32 - (2 ** 32 % span);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return low + (x % span);
      }
    }
    return low + Math.floor(this.random() * span);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.random() < p;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const tmp = out[i] as number;
      out[i] = out[j] as number;
      out[j] = tmp;
    }
    return out;
  }
}
