// The kNN monitor against a brute-force computation in plain JavaScript.
import assert from "node:assert/strict";
import { test } from "node:test";

import { extractFeatures } from "../src/encoder/features.js";
import { knnClassify } from "../src/eval/knn.js";
import { F, liveTensors, manualSeed, randint, randn, scope, tensor } from "../src/torch/index.js";

function bruteForce(
  bank: number[][],
  bankLabels: number[],
  queries: number[][],
  k: number,
  t: number,
  numClasses: number,
): number[] {
  return queries.map((q) => {
    const sims = bank.map((b, i) => ({
      sim: b.reduce((acc, v, d) => acc + v * (q[d] ?? 0), 0),
      label: bankLabels[i] ?? -1,
    }));
    sims.sort((a, b) => b.sim - a.sim);
    const votes = new Array<number>(numClasses).fill(0);
    for (const { sim, label } of sims.slice(0, k)) votes[label] = (votes[label] ?? 0) + Math.exp(sim / t);
    return votes.indexOf(Math.max(...votes));
  });
}

/** Plain kNN: one vote per neighbour among the k nearest; a tie goes to the tied class met first (nearest). */
function bruteForceMajority(
  bank: number[][],
  bankLabels: number[],
  queries: number[][],
  k: number,
  numClasses: number,
): number[] {
  return queries.map((q) => {
    const ranked = bank
      .map((b, i) => ({ sim: b.reduce((acc, v, d) => acc + v * (q[d] ?? 0), 0), label: bankLabels[i] ?? -1 }))
      .sort((a, b) => b.sim - a.sim)
      .slice(0, k);
    const counts = new Array<number>(numClasses).fill(0);
    for (const { label } of ranked) counts[label] = (counts[label] ?? 0) + 1;
    const most = Math.max(...counts);
    return (ranked.find(({ label }) => counts[label] === most) as { label: number }).label;
  });
}

function rows(t: { tolist(): unknown }): number[][] {
  return t.tolist() as number[][];
}

test("weighted kNN equals a brute-force computation", () => {
  manualSeed(3);
  const before = liveTensors();
  const numClasses = 5;
  const [bank, queries] = scope(() => [
    F.normalize(randn([300, 16]), { dim: 1 }),
    F.normalize(randn([70, 16]), { dim: 1 }),
  ]);
  const bankLabels = randint(0, numClasses, [300]);
  const queryLabels = randint(0, numClasses, [70]);
  for (const [k, t] of [
    [1, 0.1],
    [20, 0.1],
    [200, 0.5],
  ] as const) {
    const expected = bruteForce(rows(bank!), bankLabels.toArray(), rows(queries!), k, t, numClasses);
    const result = knnClassify(bank!, bankLabels, queries!, queryLabels, { k, t, numClasses, batchSize: 32 });
    assert.deepEqual(result.predictions.toArray(), expected, `k=${k} t=${t}`);
    const labels = queryLabels.toArray();
    const top1 = expected.filter((p, i) => p === labels[i]).length / labels.length;
    assert.equal(result.top1, top1);
    assert.ok(result.top5 >= result.top1 && result.top5 <= 1);
    result.predictions.dispose();
  }
  for (const x of [bank, bankLabels, queries, queryLabels]) x?.dispose();
  assert.equal(liveTensors(), before);
});

test("majority-vote kNN equals a brute-force count; ties go to the nearest neighbour's class", () => {
  manualSeed(5);
  const before = liveTensors();
  const numClasses = 4;
  const [bank, queries] = scope(() => [
    F.normalize(randn([200, 8]), { dim: 1 }),
    F.normalize(randn([90, 8]), { dim: 1 }),
  ]);
  const bankLabels = randint(0, numClasses, [200]);
  const queryLabels = randint(0, numClasses, [90]);
  // k 2 and 4 tie often (1-1, 2-2, 1-1-1-1): the tie rule is exercised, not only the count.
  for (const k of [1, 2, 3, 4, 25]) {
    const expected = bruteForceMajority(rows(bank!), bankLabels.toArray(), rows(queries!), k, numClasses);
    const result = knnClassify(bank!, bankLabels, queries!, queryLabels, {
      k,
      t: 0.1,
      vote: "majority",
      numClasses,
      batchSize: 16,
    });
    assert.deepEqual(result.predictions.toArray(), expected, `k=${k}`);
    result.predictions.dispose();
  }
  // k 1: the nearest neighbour's class, whichever the vote.
  const one = knnClassify(bank!, bankLabels, queries!, queryLabels, { k: 1, t: 0.1, vote: "majority", numClasses });
  const weighted = knnClassify(bank!, bankLabels, queries!, queryLabels, { k: 1, t: 0.1, numClasses });
  assert.deepEqual(one.predictions.toArray(), weighted.predictions.toArray());
  // Three votes against two far nearer ones: the count wins, whatever the similarities.
  const line = scope(() =>
    F.normalize(
      tensor(
        [
          [1, 0],
          [1, 0.01],
          [1, 1],
          [1, 1.1],
          [1, 1.2],
        ],
        { dtype: "float32" },
      ),
      { dim: 1 },
    ),
  );
  const query = scope(() => F.normalize(tensor([[1, 0]], { dtype: "float32" }), { dim: 1 }));
  const lineLabels = tensor([0, 0, 1, 1, 1]);
  const queryLabel = tensor([0]);
  const byVote = (vote: "weighted" | "majority") => {
    const { predictions } = knnClassify(line, lineLabels, query, queryLabel, { k: 5, t: 0.01, vote, numClasses: 2 });
    const [prediction] = predictions.toArray();
    predictions.dispose();
    return prediction;
  };
  assert.equal(byVote("weighted"), 0, "the two near neighbours outweigh three far ones");
  assert.equal(byVote("majority"), 1, "three votes beat two");
  for (const x of [bank, bankLabels, queries, queryLabels, one.predictions, weighted.predictions]) x?.dispose();
  for (const x of [line, query, lineLabels, queryLabel]) x.dispose();
  assert.equal(liveTensors(), before);
});

test("kNN separates well-clustered classes perfectly and top-5 of 5 classes is 100%", async () => {
  manualSeed(4);
  const centers = randn([5, 32]).mul(10);
  const labels = randint(0, 5, [200]);
  const points = centers.indexSelect(0, labels).add(randn([200, 32]));
  const features = await extractFeatures(200, 64, (start, n) => points.narrow(0, start, n));
  const norms = features.norm(2, 1).toArray();
  assert.ok(
    norms.every((v) => Math.abs(v - 1) < 1e-5),
    "features are L2-normalised",
  );
  const bank = features.narrow(0, 0, 150);
  const result = knnClassify(bank, labels.narrow(0, 0, 150), features.narrow(0, 150, 50), labels.narrow(0, 150, 50), {
    k: 10,
    t: 0.1,
    numClasses: 5,
  });
  assert.equal(result.top1, 1);
  assert.equal(result.top5, 1);
});

test("kNN rejects impossible settings", () => {
  const bank = tensor([[1, 0]], { dtype: "float32" });
  assert.throws(
    () => knnClassify(bank, tensor([0]), bank, tensor([0]), { k: 1, t: 0, numClasses: 1 }),
    /t must be > 0/,
  );
});
