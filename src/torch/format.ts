// Printing like PyTorch's torch/_tensor_str.py (precision 4, threshold 1000, 3 edge items, line
// width 80), so that a tensor reads the same in Node as in a Python session.
import { cat } from "./ops.js";
import type { Tensor } from "./tensor.js";

const PRECISION = 4;
const THRESHOLD = 1000;
const EDGE_ITEMS = 3;
const LINE_WIDTH = 80;
const DEFAULT_DTYPES = new Set(["float32", "int64", "bool"]);

/** Python's '{:.Ne}': the exponent has a sign and at least two digits. */
function pythonExponential(value: number, digits: number): string {
  const [mantissa, exponent = "0"] = value.toExponential(digits).split("e");
  const sign = exponent.startsWith("-") ? "-" : "+";
  const magnitude = exponent.replace(/^[+-]/, "").padStart(2, "0");
  return `${mantissa}e${sign}${magnitude}`;
}

function pythonFixed(value: number, digits: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  return value.toFixed(digits);
}

function makeFormatter(values: readonly number[], dtype: string): (v: number) => string {
  if (dtype === "bool") {
    return (v) => (v ? "True" : "False").padStart(5);
  }
  const floating = dtype.startsWith("float") || dtype === "bfloat16";
  if (!floating) {
    const width = Math.max(1, ...values.map((v) => String(v).length));
    return (v) => String(v).padStart(width);
  }
  const finiteNonzero = values.filter((v) => Number.isFinite(v) && v !== 0).map(Math.abs);
  const intMode = finiteNonzero.every((v) => Number.isInteger(v));
  let render: (v: number) => string;
  if (finiteNonzero.length === 0) {
    render = (v) => (Number.isFinite(v) ? `${v.toFixed(0)}.` : pythonFixed(v, 0));
  } else {
    const max = Math.max(...finiteNonzero);
    const min = Math.min(...finiteNonzero);
    const wide = max / min > 1000 || max > 1e8;
    if (intMode && !wide) {
      render = (v) => (Number.isFinite(v) ? `${v.toFixed(0)}.` : pythonFixed(v, 0));
    } else if (wide || (!intMode && min < 1e-4)) {
      render = (v) => (Number.isFinite(v) ? pythonExponential(v, PRECISION) : pythonFixed(v, 0));
    } else {
      render = (v) => pythonFixed(v, PRECISION);
    }
  }
  const width = Math.max(...values.map((v) => render(v).length));
  return (v) => render(v).padStart(width);
}

interface Block {
  /** The shape of `values` (edges only, when summarized). */
  shape: readonly number[];
  /** The tensor's own shape: a dim longer than 2 * EDGE_ITEMS gets "..." in the middle. */
  fullShape: readonly number[];
  values: readonly number[];
}

function formatBlock(block: Block, format: (v: number) => string, indent: number): string {
  const [size = 0, ...rest] = block.shape;
  const [fullSize = 0, ...fullRest] = block.fullShape;
  const stride = rest.reduce((a, b) => a * b, 1);
  const all = [...Array(size).keys()];
  const indices = fullSize > size ? [...all.slice(0, EDGE_ITEMS), -1, ...all.slice(EDGE_ITEMS)] : all;
  if (rest.length === 0) {
    const items = indices.map((i) => (i < 0 ? " ..." : format(block.values[i] ?? 0)));
    const itemWidth = Math.max(1, ...items.map((s) => s.length)) + 2;
    const perLine = Math.max(1, Math.floor((LINE_WIDTH - indent) / itemWidth));
    const lines: string[] = [];
    for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(", "));
    return `[${lines.join(",\n" + " ".repeat(indent + 1))}]`;
  }
  const parts = indices.map((i) =>
    i < 0
      ? "..."
      : formatBlock(
          { shape: rest, fullShape: fullRest, values: block.values.slice(i * stride, (i + 1) * stride) },
          format,
          indent + 1,
        ),
  );
  return `[${parts.join("," + "\n".repeat(rest.length) + " ".repeat(indent + 1))}]`;
}

/** The elements a summarized print shows (the edges of each dim), as a smaller dense block. */
function edgeBlock(tensor: Tensor): Block {
  let view = tensor;
  const owned: Tensor[] = [];
  tensor.shape.forEach((size, dim) => {
    if (size > 2 * EDGE_ITEMS) {
      const head = view.narrow(dim, 0, EDGE_ITEMS);
      const tail = view.narrow(dim, size - EDGE_ITEMS, EDGE_ITEMS);
      const joined = cat([head, tail], dim);
      owned.push(head, tail, joined);
      view = joined;
    }
  });
  const values = view.toArray();
  const shape = view.shape;
  for (const t of owned) t.dispose();
  return { shape, fullShape: tensor.shape, values };
}

export function formatTensor(tensor: Tensor): string {
  if (tensor.isDisposed) return "tensor(<disposed>)";
  const dtype = tensor.dtype;
  const suffixes: string[] = [];
  const shape = tensor.shape;
  let body: string;
  if (tensor.numel === 0) {
    body = "[]";
    if (!(shape.length === 1 && shape[0] === 0)) suffixes.push(`size=(${shape.join(", ")}${shape.length === 1 ? "," : ""})`);
  } else {
    const summarize = tensor.numel > THRESHOLD;
    const detached = tensor.detach();
    const block = summarize ? edgeBlock(detached) : { shape, fullShape: shape, values: detached.toArray() };
    detached.dispose();
    const formatter = makeFormatter(block.values, dtype);
    if (shape.length === 0) {
      body = formatter(block.values[0] ?? 0).trim();
    } else {
      body = formatBlock(block, formatter, "tensor(".length);
    }
  }
  const device = tensor.device;
  if (device !== "cpu") suffixes.push(`device='${device}'`);
  if (!DEFAULT_DTYPES.has(dtype) || (tensor.numel === 0 && dtype !== "float32")) suffixes.push(`dtype=torch.${dtype}`);
  const gradFn = tensor.gradFn;
  if (gradFn !== null) suffixes.push(`grad_fn=<${gradFn}>`);
  else if (tensor.requiresGrad) suffixes.push("requires_grad=True");
  return `tensor(${[body, ...suffixes].join(", ")})`;
}
