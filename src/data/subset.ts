// A subset of a dataset as a seeded random sample, stratified by class when there are labels. The
// first N images would be the first N files by path, which in a folder of class sub-folders is the
// alphabetically first classes only (issue #16): a biased sample that nothing would reveal.
import type { ImageDataset } from "./dataset.js";
import { Random } from "./random.js";

/** The stream word of subset sampling, so that it draws apart from the loader's and augmentation's streams. */
const SUBSET_STREAM = 0x5b5e7;

/**
 * `n` of `length` indices, ascending: a seeded random sample, stratified by `labels` when given
 * (each class gets its share of `n`, the remainders going to the largest fractions, ties to the
 * lower class). The same arguments give the same indices, which is what exact resume relies on.
 */
export function sampleIndices(length: number, n: number, seed: number, labels: readonly number[] | null): number[] {
  if (!Number.isSafeInteger(n) || n < 1 || n > length)
    throw new RangeError(`sampleIndices: n must be an integer in [1, ${length}], got ${String(n)}`);
  const rng = new Random(seed, SUBSET_STREAM);
  const byClass = new Map<number, number[]>();
  if (labels === null)
    byClass.set(
      0,
      Array.from({ length }, (_, i) => i),
    );
  else
    labels.forEach((label, i) => {
      const members = byClass.get(label);
      if (members === undefined) byClass.set(label, [i]);
      else members.push(i);
    });
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const shares = classes.map((c) => ((byClass.get(c) as number[]).length * n) / length);
  const counts = shares.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = classes
    .map((_, i) => i)
    .sort((a, b) => ((shares[b] as number) % 1) - ((shares[a] as number) % 1) || a - b);
  for (const i of order) {
    if (left === 0) break;
    counts[i] = (counts[i] as number) + 1;
    left--;
  }
  const chosen: number[] = [];
  classes.forEach((c, i) => {
    const members = byClass.get(c) as number[];
    // A partial Fisher–Yates shuffle: the first `count` places are a uniform sample without replacement.
    const count = counts[i] as number;
    for (let k = 0; k < count; k++) {
      const j = rng.int(k, members.length);
      const picked = members[j] as number;
      members[j] = members[k] as number;
      members[k] = picked;
      chosen.push(picked);
    }
  });
  return chosen.sort((a, b) => a - b);
}

/** The indices of a dataset's seeded, class-stratified sample of `n` images (see sampleIndices). */
export function subsetIndices(dataset: ImageDataset, n: number, seed: number): number[] {
  const labels = dataset.labels === null || dataset.numClasses === 0 ? null : dataset.labels.toArray();
  return sampleIndices(dataset.length, n, seed, labels);
}

/** What a run folder's subset.json holds: enough to see, and to reproduce, which images a run used. */
export interface SubsetRecord {
  dataset: string;
  seed: number;
  /** Images available. */
  of: number;
  stratified: boolean;
  indices: number[];
}

/**
 * A seeded random sample of `n` images (all of them when n ≥ length: the dataset itself), and the
 * record of it; the caller disposes a returned dataset that is not `dataset`.
 */
export function randomSubset(
  dataset: ImageDataset,
  n: number,
  seed: number,
): { dataset: ImageDataset; record: SubsetRecord | null } {
  if (n >= dataset.length) return { dataset, record: null };
  const indices = subsetIndices(dataset, n, seed);
  return {
    dataset: dataset.select(indices, `${dataset.name} (${n} sampled, seed ${seed})`),
    record: { dataset: dataset.name, seed, of: dataset.length, stratified: dataset.labels !== null, indices },
  };
}
