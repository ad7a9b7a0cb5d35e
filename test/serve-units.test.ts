// The parts of `moco serve` that need no model: the micro-batcher (batches bounded in size, a
// bounded queue, the event loop free between batches, close() draining) and magic-byte sniffing.
import assert from "node:assert/strict";
import { test } from "node:test";

import { MicroBatcher } from "../src/serve/batcher.js";
import { QueueFullError, ShuttingDownError } from "../src/serve/errors.js";
import { sniffImage } from "../src/serve/sniff.js";

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test("requests arriving together share a batch; batches never exceed maxBatch; results keep their order", async () => {
  const sizes: number[] = [];
  const batcher = new MicroBatcher<number, number>(
    (items) => {
      sizes.push(items.length);
      return items.map((x) => x * 2);
    },
    { maxBatch: 4, windowMs: 20, capacity: 100 },
  );
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.submit(async () => i)));
  assert.deepEqual(
    results,
    Array.from({ length: 10 }, (_, i) => i * 2),
  );
  assert.deepEqual(sizes, [4, 4, 2]);
  assert.deepEqual(batcher.stats, { batches: 3, items: 10, largestBatch: 4, refused: 0 });
});

test("the event loop is held for at most one batch at a time", async () => {
  const batchMs = 40;
  const batcher = new MicroBatcher<number, number>(
    (items) => {
      busy(batchMs);
      return items;
    },
    { maxBatch: 2, windowMs: 0, capacity: 100 },
  );
  // A timer that should fire every 5 ms: the longest gap between its ticks is the longest block.
  let last = performance.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  try {
    await Promise.all(Array.from({ length: 12 }, (_, i) => batcher.submit(async () => i)));
  } finally {
    clearInterval(ticker);
  }
  assert.equal(batcher.stats.batches, 6);
  // Six batches run back to back would block for 240 ms; one batch plus timer slack is far less.
  assert.ok(longest < 2 * batchMs + 60, `the event loop was blocked for ${longest.toFixed(0)} ms`);
});

test("beyond its capacity the batcher refuses at once; a failed batch fails only its own jobs", async () => {
  let fail = true;
  const batcher = new MicroBatcher<number, number>(
    (items) => {
      if (fail) throw new Error("encoder failed");
      return items;
    },
    { maxBatch: 8, windowMs: 30, capacity: 3 },
  );
  const admitted = Array.from({ length: 3 }, (_, i) => batcher.submit(async () => i));
  await assert.rejects(
    batcher.submit(async () => 99),
    QueueFullError,
  );
  assert.equal(batcher.pending, 3);
  for (const job of admitted) await assert.rejects(job, /encoder failed/);
  assert.equal(batcher.pending, 0, "slots come back after a failure");
  fail = false;
  assert.equal(await batcher.submit(async () => 7), 7);
  // A job whose preparation (the decode) fails gives its slot back too.
  await assert.rejects(
    batcher.submit(async () => Promise.reject(new Error("bad image"))),
    /bad image/,
  );
  assert.equal(batcher.pending, 0);
  assert.equal(batcher.stats.refused, 1);
});

test("close() answers every admitted job, then refuses new ones", async () => {
  const batcher = new MicroBatcher<number, number>((items) => items, { maxBatch: 4, windowMs: 50, capacity: 10 });
  const jobs = Array.from({ length: 5 }, (_, i) => batcher.submit(async () => i));
  await batcher.close();
  assert.deepEqual(await Promise.all(jobs), [0, 1, 2, 3, 4]);
  await assert.rejects(
    batcher.submit(async () => 5),
    ShuttingDownError,
  );
});

test("image formats are told by their magic bytes", () => {
  const bytes = (...values: number[]) => Uint8Array.from(values);
  assert.equal(sniffImage(bytes(0xff, 0xd8, 0xff, 0xe0, 0, 0)), "jpeg");
  assert.equal(sniffImage(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0)), "png");
  assert.equal(sniffImage(Uint8Array.from(Buffer.from("RIFF\x10\x00\x00\x00WEBPVP8 ", "latin1"))), "webp");
  assert.equal(sniffImage(Uint8Array.from(Buffer.from("RIFF\x10\x00\x00\x00WAVEfmt ", "latin1"))), null);
  assert.equal(sniffImage(Uint8Array.from(Buffer.from("GIF89a", "latin1"))), null);
  assert.equal(sniffImage(bytes(0x89, 0x50, 0x4e)), null, "a truncated signature is not a PNG");
  assert.equal(sniffImage(new Uint8Array(0)), null);
});
