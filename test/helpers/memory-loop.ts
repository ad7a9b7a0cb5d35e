// A small training loop run in a child process by memory.test.ts; prints JSON measurements.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { F, keep, liveTensors, randn, scope, tensor, zeros } from "../../src/torch/index.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Resident memory outside V8's heap after a full GC: what leaked native tensors would grow. */
function nativeResidentMiB(): number {
  gc();
  const { rss, heapTotal } = process.memoryUsage();
  return (rss - heapTotal) / 2 ** 20;
}

const iterations = Number(process.argv[2] ?? 1000);
const weight = keep(randn([256, 128]).mul(0.05).requiresGrad_());
const bias = keep(zeros([128]).requiresGrad_());
const baseline = liveTensors();
const samples: { iteration: number; residentMiB: number; liveTensors: number }[] = [];
for (let i = 1; i <= iterations; i++) {
  scope(() => {
    const x = randn([64, 256]);
    const target = tensor(Array.from({ length: 64 }, (_, k) => k % 10));
    const logits = F.relu(F.linear(x, weight.t(), bias)).narrow(1, 0, 10);
    F.crossEntropy(logits, target).backward();
    weight.grad = null;
    bias.grad = null;
  });
  if (i % 100 === 0) samples.push({ iteration: i, residentMiB: nativeResidentMiB(), liveTensors: liveTensors() });
}
process.stdout.write(JSON.stringify({ baseline, samples }));
