// Nearest neighbours by cosine similarity: queries against an index of L2-normalised embeddings,
// the index taken a chunk at a time so the similarity matrix stays small whatever its size.
import { cat, keep, noGrad, scope, type Tensor } from "../torch/index.js";

export interface Neighbours {
  /** int64 [Q, k]: rows of the index, most similar first. */
  indices: Tensor;
  /** float32 [Q, k]: their cosine similarities. */
  similarities: Tensor;
}

/** The k rows of `index` [N, D] most similar to each row of `queries` [Q, D] (both L2-normalised). */
export function nearestNeighbours(queries: Tensor, index: Tensor, k: number, chunkRows = 65536): Neighbours {
  const total = index.shape[0] ?? 0;
  if (!(Number.isSafeInteger(k) && k >= 1)) throw new RangeError(`search: k must be a positive integer, got ${k}`);
  if (queries.ndim !== 2 || index.ndim !== 2 || queries.shape[1] !== index.shape[1])
    throw new RangeError(
      `search: queries [${queries.shape.join(", ")}] and index [${index.shape.join(", ")}] must be [Q, D] and [N, D]`,
    );
  if (total === 0) throw new RangeError("search: the index is empty");
  const wanted = Math.min(k, total);
  let best: Neighbours | null = null;
  for (let start = 0; start < total; start += chunkRows) {
    const n = Math.min(chunkRows, total - start);
    const merged: Neighbours = scope(() =>
      noGrad(() => {
        const similarity = queries.mm(index.narrow(0, start, n).t());
        const top = similarity.topk(Math.min(wanted, n), 1);
        const indices = top.indices.add(start);
        if (best === null) return { indices, similarities: top.values };
        const values = cat([best.similarities, top.values], 1);
        const rows = cat([best.indices, indices], 1);
        const pick = values.topk(wanted, 1);
        return { indices: rows.gather(1, pick.indices), similarities: pick.values };
      }),
    );
    if (best !== null) {
      best.indices.dispose();
      best.similarities.dispose();
    }
    best = { indices: keep(merged.indices), similarities: keep(merged.similarities) };
  }
  return best as Neighbours;
}
