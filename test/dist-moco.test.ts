// Distributed MoCo, 2 processes on 127.0.0.1: data parallelism is equivalent to one process with
// the global batch and split BN; the cross-rank shuffle keeps the queues identical and learns; the
// sampler shards the data as PyTorch's DistributedSampler.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DataLoader, type ImageDataset } from "../src/data/index.js";
import { DistributedSampler } from "../src/dist/index.js";
import { report, spawnRanks } from "./helpers/dist.js";

interface Run {
  rank: number;
  losses: number[];
  live: number;
  moved: number;
  buckets: number;
  params: Record<string, number[]>;
  queue: number[];
  queuePtr: number;
}

async function runRanks(args: string[]): Promise<Run[]> {
  const results = await spawnRanks("dist-moco.ts", ["ranks", ...args], { worldSize: 2 });
  for (const result of results) assert.equal(result.code, 0, result.stderr);
  return results.map((r) => report<Run>(r));
}

async function runSingle(args: string[]): Promise<Run> {
  const [result] = await spawnRanks("dist-moco.ts", ["single", ...args], { worldSize: 1 });
  assert.ok(result !== undefined);
  assert.equal(result.code, 0, result.stderr);
  return report<Run>(result);
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe("distributed MoCo, 2 processes", () => {
  it("2 ranks × batch 8 without the key shuffle end where 1 process × batch 16 with 2 BN splits does", async () => {
    const args = ["noshuffle", "20", "0.02"];
    const [ranks, single] = await Promise.all([runRanks(args), runSingle(args)]);
    const [r0, r1] = ranks as [Run, Run];
    // The losses: each rank's mean over its half, averaged, is the one process's mean.
    r0.losses.forEach((loss, i) => {
      const expected = single.losses[i] as number;
      assert.ok(Math.abs((loss + (r1.losses[i] as number)) / 2 - expected) < 1e-4, `loss at step ${i}`);
    });
    // The parameters, after 20 steps that moved them by up to ~0.3: measured difference ~1e-4.
    assert.ok(single.moved > 0.1, `the parameters moved by only ${single.moved}`);
    let worst = 0;
    for (const [name, values] of Object.entries(single.params)) {
      for (const rank of ranks) {
        const other = rank.params[name];
        assert.ok(other !== undefined && other.length === values.length, name);
        values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (other[i] as number)))));
      }
    }
    assert.ok(worst < 1e-3, `parameters differ by up to ${worst}`);
    assert.ok(r0.buckets > 1, "the gradients travelled in several buckets");
    // The queues: identical across ranks; the one process's holds the same keys, its columns in
    // global batch order (rank r's i-th image is image r + 2i of the global batch).
    assert.deepEqual(r0.queue, r1.queue);
    assert.equal(r0.queuePtr, single.queuePtr);
    const K = 48;
    const dim = r0.queue.length / K;
    let queueWorst = 0;
    for (let d = 0; d < dim; d++) {
      for (let block = 0; block < K / 16; block++) {
        for (let rank = 0; rank < 2; rank++) {
          for (let i = 0; i < 8; i++) {
            const ours = r0.queue[d * K + block * 16 + rank * 8 + i] as number;
            const theirs = single.queue[d * K + block * 16 + 2 * i + rank] as number;
            queueWorst = Math.max(queueWorst, Math.abs(ours - theirs));
          }
        }
      }
    }
    assert.ok(queueWorst < 1e-3, `queues differ by up to ${queueWorst}`);
    for (const run of [...ranks, single]) assert.equal(run.live, 0, `rank ${run.rank} leaked tensors`);
  });

  it("with the cross-rank shuffle, the queues stay identical and the loss falls", async () => {
    const [r0, r1] = (await runRanks(["shuffle", "60", "0.1"])) as [Run, Run];
    assert.deepEqual(r0.queue, r1.queue);
    assert.equal(r0.queuePtr, r1.queuePtr);
    const losses = r0.losses.map((loss, i) => (loss + (r1.losses[i] as number)) / 2);
    // The loss rises while the queue fills (3 steps), then falls: measured 3.76 → 3.01.
    const early = mean(losses.slice(3, 13));
    const late = mean(losses.slice(-10));
    assert.ok(late < early - 0.3, `loss ${early.toFixed(3)} after the queue filled, ${late.toFixed(3)} at the end`);
    assert.equal(r0.live, 0);
    assert.equal(r1.live, 0);
  });
});

describe("DistributedSampler", () => {
  it("gives each rank a disjoint share of equal length, reshuffled per epoch", () => {
    const n = 103;
    const samplers = [0, 1, 2].map((rank) => new DistributedSampler(n, { rank, worldSize: 3, seed: 5 }));
    for (const epoch of [0, 1]) {
      const orders = samplers.map((s) => s.order(epoch));
      for (const order of orders) assert.equal(order.length, 34);
      const all = new Set(orders.flatMap((o) => [...o]));
      assert.equal(all.size, 102, "disjoint");
      for (const i of all) assert.ok(i >= 0 && i < n);
    }
    assert.notDeepEqual(samplers[0]?.order(0), samplers[0]?.order(1));
    assert.deepEqual(samplers[1]?.order(3), new DistributedSampler(n, { rank: 1, worldSize: 3, seed: 5 }).order(3));
    const plain = new DistributedSampler(10, { rank: 1, worldSize: 2, shuffle: false });
    assert.deepEqual([...plain.order(0)], [1, 3, 5, 7, 9]);
  });

  it("the ranks' batches of a step together are the one-process batch of the global size", () => {
    const dataset = { name: "fake", length: 50, labels: null } as unknown as ImageDataset;
    const single = new DataLoader(dataset, { batchSize: 8, seed: 3 });
    const ranks = [0, 1].map(
      (rank) =>
        new DataLoader(dataset, {
          batchSize: 4,
          sampler: new DistributedSampler(dataset.length, { rank, worldSize: 2, seed: 3 }),
        }),
    );
    assert.equal(ranks[0]?.batchesPerEpoch, 6);
    assert.equal(single.batchesPerEpoch, 6);
    for (let step = 0; step < 6; step++) {
      const together = ranks.flatMap((loader) => [...loader.batchIndices(2, step)]).sort((a, b) => a - b);
      assert.deepEqual(
        together,
        [...single.batchIndices(2, step)].sort((a, b) => a - b),
      );
    }
  });

  it("rejects bad arguments", () => {
    assert.throws(
      () => new DistributedSampler(10, { rank: 2, worldSize: 2 }),
      /rank must be an integer in \[0, 2\), got 2/,
    );
    assert.throws(() => new DistributedSampler(10, { rank: 0, worldSize: 0 }), /worldSize must be a positive integer/);
    assert.throws(() => new DistributedSampler(-1, { rank: 0, worldSize: 1 }), /datasetLength must be/);
    assert.throws(() => new DistributedSampler(10, { rank: 0, worldSize: 1 }).order(-1), /epoch must be/);
  });
});
