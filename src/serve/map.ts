// The 2-D map of the index the page draws: the embeddings projected on their first two principal
// components. Computed server-side on an evenly spaced sample (at most `maxPoints` rows), by power
// iteration on the D×D covariance (a few matrix-vector products; no eigen-solver needed), so the
// browser gets coordinates, not N×D floats.
import { fromTypedArray, noGrad, scope, type Tensor } from "../torch/index.js";
import type { LiveIndex } from "./live-index.js";

export interface IndexMap {
  /** Rows of the index drawn, and their coordinates scaled into [-1, 1]. */
  points: { row: number; x: number; y: number; label: number | null }[];
  count: number;
  /** Share of the sample's variance along each axis. */
  explained: [number, number];
}

const ITERATIONS = 60;

/** The leading eigenvector of the symmetric matrix `c` [D, D] and its eigenvalue. */
function leading(c: Tensor, dim: number): { vector: Tensor; value: number } {
  // A fixed, non-degenerate start keeps the map the same from one call to the next.
  const start = new Float32Array(dim).map((_, i) => 1 + ((i * 7919) % 13) / 13);
  let v = fromTypedArray(start, [dim, 1]);
  for (let i = 0; i < ITERATIONS; i += 1) {
    const next = c.mm(v);
    v = next.div(next.norm().clampMin(1e-12));
  }
  const value = v.t().mm(c).mm(v).item();
  return { vector: v, value };
}

export function indexMap(index: LiveIndex, maxPoints = 2000): IndexMap {
  const count = index.count;
  const stride = Math.max(1, Math.ceil(count / maxPoints));
  const rows = Array.from({ length: Math.ceil(count / stride) }, (_, i) => i * stride);
  if (rows.length < 2)
    return {
      points: rows.map((row) => ({ row, x: 0, y: 0, label: index.labels[row] ?? null })),
      count,
      explained: [0, 0],
    };
  const { xy, explained } = scope(() =>
    noGrad(() => {
      const x = index.rows().slice(0, 0, count, stride);
      const centred = x.sub(x.mean(0, true));
      const c = centred.t().mm(centred).div(rows.length);
      const total = centred.pow(2).sum().item() / rows.length;
      const first = leading(c, index.dim);
      const deflated = c.sub(first.vector.mm(first.vector.t()).mul(first.value));
      const second = leading(deflated, index.dim);
      const projected = centred.mm(first.vector).flatten();
      const projected2 = centred.mm(second.vector).flatten();
      return {
        xy: [projected.toTypedArray<"float32">().slice(), projected2.toTypedArray<"float32">().slice()] as const,
        explained: [first.value / total, second.value / total] as [number, number],
      };
    }),
  );
  const scale = (values: Float32Array) => {
    const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-12);
    return Array.from(values, (v) => v / max);
  };
  const [xs, ys] = [scale(xy[0]), scale(xy[1])];
  return {
    points: rows.map((row, i) => ({ row, x: xs[i] as number, y: ys[i] as number, label: index.labels[row] ?? null })),
    count,
    explained,
  };
}
