// Printing like PyTorch's torch/_tensor_str.py (precision 4, threshold 1000, 3 edge items, line
// width 80), so that a tensor reads the same in Node as in a Python session.
import type { Tensor } from "./tensor.js";

const PRECISION = 4;
const THRESHOLD = 1000;
const EDGE_ITEMS = 3;
const LINE_WIDTH = 80;
const DEFAULT_DTYPES = new Set(["float32", "int64", "bool"]);

/** The exact decimal expansion of |x| (finite): its digits and how many come before the point. */
function exactDigits(x: number): { digits: string; intLength: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exp2 = -1074;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exp2 = biased - 1075;
  }
  if (exp2 >= 0) {
    const digits = (mantissa << BigInt(exp2)).toString();
    return { digits, intLength: digits.length };
  }
  // mantissa / 2^k = mantissa * 5^k / 10^k
  const k = -exp2;
  const digits = (mantissa * 5n ** BigInt(k)).toString().padStart(k + 1, "0");
  return { digits, intLength: digits.length - k };
}

/**
 * Keeps the first `keep` digits, rounding half to even on the exact value as Python's format()
 * does (JS's toFixed/toExponential round ties away from zero). Returns the kept digits, one more
 * than `keep` when rounding carried into a new leading digit.
 */
function roundDigits(digits: string, keep: number): string {
  const kept = digits.slice(0, keep).padEnd(keep, "0");
  const rest = digits.slice(keep);
  const first = rest.charCodeAt(0) - 48;
  const beyond = /[1-9]/.test(rest.slice(1));
  const lastOdd = (kept.charCodeAt(keep - 1) - 48) % 2 === 1;
  const up = first > 5 || (first === 5 && (beyond || lastOdd));
  if (!up) return kept;
  return (BigInt(kept) + 1n).toString().padStart(keep, "0");
}

function nonFinite(value: number): string {
  return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
}

function signOf(value: number): string {
  return value < 0 || Object.is(value, -0) ? "-" : "";
}

/** Python's '{:.Nf}'. */
function pythonFixed(value: number, digits: number): string {
  if (!Number.isFinite(value)) return nonFinite(value);
  const exact = exactDigits(value);
  const intLength = Math.max(exact.intLength, 1);
  const padded = exact.digits.padStart(intLength, "0");
  const rounded = roundDigits(padded, intLength + digits);
  const split = rounded.length - digits;
  const fraction = digits > 0 ? `.${rounded.slice(split)}` : "";
  return `${signOf(value)}${rounded.slice(0, split)}${fraction}`;
}

/** Python's '{:.Ne}': the exponent has a sign and at least two digits. */
function pythonExponential(value: number, digits: number): string {
  if (!Number.isFinite(value)) return nonFinite(value);
  let mantissa = "0".repeat(digits + 1);
  let exponent = 0;
  if (value !== 0) {
    const exact = exactDigits(value);
    const lead = exact.digits.search(/[1-9]/);
    exponent = exact.intLength - lead - 1;
    mantissa = roundDigits(exact.digits.slice(lead), digits + 1);
    if (mantissa.length > digits + 1) {
      mantissa = mantissa.slice(0, digits + 1);
      exponent += 1;
    }
  }
  const fraction = digits > 0 ? `.${mantissa.slice(1)}` : "";
  const magnitude = String(Math.abs(exponent)).padStart(2, "0");
  return `${signOf(value)}${mantissa[0]}${fraction}e${exponent < 0 ? "-" : "+"}${magnitude}`;
}

interface Formatter {
  /** The width every element is padded to (PyTorch's max_width). */
  width: number;
  format(value: Element): string;
}

/** An element as JS reads it: int64 as bigint, so that values beyond 2^53 print exactly. */
type Element = number | bigint;

function elementsOf(tensor: Tensor): Element[] {
  return tensor.dtype === "int64" ? Array.from(tensor.toTypedArray<"int64">()) : tensor.toArray();
}

/** torch/_tensor_str.py's _Formatter: widths come from the non-zero finite values only. */
function makeFormatter(elements: readonly Element[], dtype: string): Formatter {
  const floating = dtype.startsWith("float") || dtype === "bfloat16";
  if (!floating) {
    const str = dtype === "bool" ? (v: Element) => (v ? "True" : "False") : (v: Element) => String(v);
    const width = Math.max(1, ...elements.map((v) => str(v).length));
    return { width, format: (v) => str(v).padStart(width) };
  }
  const values = elements as readonly number[];
  let intMode = true;
  let sciMode = false;
  let width = 1;
  const finite = values.filter((v) => Number.isFinite(v) && v !== 0);
  if (finite.length > 0) {
    const magnitudes = finite.map(Math.abs);
    const max = Math.max(...magnitudes);
    const min = Math.min(...magnitudes);
    intMode = finite.every((v) => v === Math.ceil(v));
    sciMode = max / min > 1000 || max > 1e8 || (!intMode && min < 1e-4);
    const widthOf = sciMode
      ? (v: number) => pythonExponential(v, PRECISION).length
      : intMode
        ? (v: number) => pythonFixed(v, 0).length + 1
        : (v: number) => pythonFixed(v, PRECISION).length;
    width = Math.max(width, ...finite.map(widthOf));
  }
  const render = (v: number): string => {
    if (sciMode) return pythonExponential(v, PRECISION);
    if (intMode) return Number.isFinite(v) ? `${pythonFixed(v, 0)}.` : nonFinite(v);
    return pythonFixed(v, PRECISION);
  };
  return { width, format: (v) => render(Number(v)).padStart(width) };
}

interface Block {
  /** The shape of `values` (edges only, when summarized). */
  shape: readonly number[];
  /** The tensor's own shape: a dim longer than 2 * EDGE_ITEMS gets "..." in the middle. */
  fullShape: readonly number[];
  values: readonly Element[];
}

function formatBlock(block: Block, formatter: Formatter, indent: number): string {
  const [size = 0, ...rest] = block.shape;
  const [fullSize = 0, ...fullRest] = block.fullShape;
  const stride = rest.reduce((a, b) => a * b, 1);
  const all = [...Array(size).keys()];
  const indices = fullSize > size ? [...all.slice(0, EDGE_ITEMS), -1, ...all.slice(EDGE_ITEMS)] : all;
  if (rest.length === 0) {
    const items = indices.map((i) => (i < 0 ? " ..." : formatter.format(block.values[i] ?? 0)));
    const perLine = Math.max(1, Math.floor((LINE_WIDTH - indent) / (formatter.width + 2)));
    const lines: string[] = [];
    for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(", "));
    return `[${lines.join(",\n" + " ".repeat(indent + 1))}]`;
  }
  const parts = indices.map((i) =>
    i < 0
      ? "..."
      : formatBlock(
          { shape: rest, fullShape: fullRest, values: block.values.slice(i * stride, (i + 1) * stride) },
          formatter,
          indent + 1,
        ),
  );
  return `[${parts.join("," + "\n".repeat(rest.length) + " ".repeat(indent + 1))}]`;
}

/**
 * The elements a summarized print shows (the edges of each dim), as a smaller dense block. Each
 * combination of head and tail edges is read as one narrowed view and placed in the block here, in
 * JS, rather than joined with `cat`: this module stays below ops.ts (tensor.ts imports it), so the
 * tensor layer has no import cycle.
 */
function edgeBlock(tensor: Tensor): Block {
  const fullShape = tensor.shape;
  const shape = fullShape.map((size) => Math.min(size, 2 * EDGE_ITEMS));
  const summarized = fullShape.flatMap((size, dim) => (size > 2 * EDGE_ITEMS ? [dim] : []));
  const strides = shape.map((_, dim) => shape.slice(dim + 1).reduce((a, b) => a * b, 1));
  const values = new Array<Element>(shape.reduce((a, b) => a * b, 1));
  for (let corner = 0; corner < 2 ** summarized.length; corner++) {
    const offsets = shape.map(() => 0);
    const owned: Tensor[] = [];
    let view = tensor;
    summarized.forEach((dim, bit) => {
      const tail = ((corner >> bit) & 1) === 1;
      view = view.narrow(dim, tail ? (fullShape[dim] as number) - EDGE_ITEMS : 0, EDGE_ITEMS);
      owned.push(view);
      if (tail) offsets[dim] = EDGE_ITEMS;
    });
    const part = elementsOf(view);
    const partShape = view.shape;
    for (let i = 0; i < part.length; i++) {
      let rest = i;
      let at = 0;
      for (let dim = partShape.length - 1; dim >= 0; dim--) {
        const size = partShape[dim] as number;
        at += ((rest % size) + (offsets[dim] as number)) * (strides[dim] as number);
        rest = Math.floor(rest / size);
      }
      values[at] = part[i] as Element;
    }
    for (const t of owned) t.dispose();
  }
  return { shape, fullShape, values };
}

/** torch/_tensor_str.py's _add_suffixes: a suffix that would pass the line width starts a new line. */
function addSuffixes(text: string, suffixes: readonly string[], indent: number): string {
  const parts = [text];
  let lastLineLength = text.length - text.lastIndexOf("\n") + 1;
  for (const suffix of suffixes) {
    if (lastLineLength + suffix.length + 2 > LINE_WIDTH) {
      parts.push(`,\n${" ".repeat(indent)}${suffix}`);
      lastLineLength = indent + suffix.length;
    } else {
      parts.push(`, ${suffix}`);
      lastLineLength += suffix.length + 2;
    }
  }
  parts.push(")");
  return parts.join("");
}

export function formatTensor(tensor: Tensor): string {
  if (tensor.isDisposed) return "tensor(<disposed>)";
  const prefix = "tensor(";
  const dtype = tensor.dtype;
  const shape = tensor.shape;
  const suffixes: string[] = [];
  const device = tensor.device;
  if (device !== "cpu") suffixes.push(`device='${device}'`);
  let body: string;
  if (tensor.numel === 0) {
    body = "[]";
    if (shape.length !== 1) suffixes.push(`size=(${shape.join(", ")})`);
    if (dtype !== "float32") suffixes.push(`dtype=torch.${dtype}`);
  } else {
    if (!DEFAULT_DTYPES.has(dtype)) suffixes.push(`dtype=torch.${dtype}`);
    const summarize = tensor.numel > THRESHOLD;
    const detached = tensor.detach();
    const block = summarize ? edgeBlock(detached) : { shape, fullShape: shape, values: elementsOf(detached) };
    detached.dispose();
    const formatter = makeFormatter(block.values, dtype);
    body = shape.length === 0 ? formatter.format(block.values[0] ?? 0) : formatBlock(block, formatter, prefix.length);
  }
  const gradFn = tensor.gradFn;
  if (gradFn !== null) suffixes.push(`grad_fn=<${gradFn}>`);
  else if (tensor.requiresGrad) suffixes.push("requires_grad=True");
  return addSuffixes(prefix + body, suffixes, prefix.length);
}
