// Cross-checks against Python PyTorch, run by the tests themselves (no stored numbers).
//
// A test file lists cases: a Python expression over named inputs (`torch`, `F` =
// torch.nn.functional and `math` in scope) and the same computation with our API. `crossCheck`
// registers one node:test test per case comparing values, dtypes and shapes; before the first of a
// file's suites runs, every case's TypeScript side runs, then ONE `PYTHON
// test/py/opcheck.py` process (helpers/python.ts) evaluates all the file's expressions in order.
// With `grad`, both sides backpropagate the same upstream gradient (a fixed pseudo-random tensor
// per output, made here and sent along) and the gradients of the named inputs are compared too.
//
// Inputs and results travel in a neutral container, deliberately not our torch.save code (tested
// separately): an 8-byte little-endian header length, a JSON header, raw little-endian tensor bytes.
//
// Tolerances (|ours - torch| <= atol + rtol * |torch|): float32 rtol 1e-4 / atol 1e-5, float64
// rtol 1e-10 / atol 1e-12, float16/bfloat16 rtol 1e-2 / atol 1e-3; integers, bools and strings
// exactly. Dtypes and shapes must match exactly. A case may widen its tolerance, saying why.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { before, describe, it } from "node:test";
import * as torch from "../../src/torch/index.js";
import { Tensor, type DType } from "../../src/torch/index.js";
import { PYTHON } from "./python.js";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "py", "opcheck.py");

export interface Tolerance {
  rtol: number;
  atol: number;
}

export function defaultTolerance(dtype: DType): Tolerance {
  switch (dtype) {
    case "float64":
      return { rtol: 1e-10, atol: 1e-12 };
    case "float16":
    case "bfloat16":
      return { rtol: 1e-2, atol: 1e-3 };
    default:
      return { rtol: 1e-4, atol: 1e-5 };
  }
}

const FLOATING = new Set<DType>(["float16", "bfloat16", "float32", "float64"]);

// ---- snapshots: a tensor's dtype, shape and bytes, independent of native lifetime ------------

class Snapshot {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly bytes: Uint8Array,
  ) {}

  static of(t: Tensor): Snapshot {
    return new Snapshot(t.dtype, [...t.shape], t.toBytes());
  }

  toTensor(): Tensor {
    return torch.fromBytes(this.bytes, this.dtype, this.shape);
  }

  /** Elements as JS numbers (int64 beyond 2^53 rounds: exact comparisons use the bytes). */
  numbers(): number[] {
    const buf = this.bytes.slice().buffer;
    switch (this.dtype) {
      case "float32":
        return Array.from(new Float32Array(buf));
      case "float64":
        return Array.from(new Float64Array(buf));
      case "float16":
        return Array.from(new Uint16Array(buf), halfToNumber);
      case "bfloat16":
        return Array.from(new Uint16Array(buf), (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0] ?? NaN);
      case "int64":
        return Array.from(new BigInt64Array(buf), Number);
      case "int32":
        return Array.from(new Int32Array(buf));
      case "int16":
        return Array.from(new Int16Array(buf));
      case "int8":
        return Array.from(new Int8Array(buf));
      case "uint8":
      case "bool":
        return Array.from(new Uint8Array(buf));
    }
  }

  describe(): string {
    return `${this.dtype} [${this.shape.join(", ")}]`;
  }
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** A value on either side: tensors as snapshots, Python tuples/lists and our pairs as arrays. */
type Tree = Snapshot | number | boolean | string | null | Tree[];

/** Our outputs: tensors, numbers, booleans, strings, arrays and plain objects such as {values, indices}. */
function snapshotTree(value: unknown): Tree {
  if (value instanceof Tensor) return Snapshot.of(value);
  if (value === null || value === undefined) return null;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(snapshotTree);
  if (typeof value === "object") return Object.values(value as object).map(snapshotTree);
  throw new TypeError(`cannot compare a ${typeof value}`);
}

/** Output tensors in order, null for non-tensors: the same walk opcheck.py makes. */
function flattenOutputs(value: unknown, out: (Tensor | null)[] = []): (Tensor | null)[] {
  if (value instanceof Tensor) out.push(value);
  else if (Array.isArray(value)) for (const v of value) flattenOutputs(v, out);
  else if (typeof value === "object" && value !== null) for (const v of Object.values(value)) flattenOutputs(v, out);
  else out.push(null);
  return out;
}

// ---- comparison ---------------------------------------------------------------------------------

function multiIndex(flat: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    const size = shape[d] ?? 1;
    idx.unshift(flat % size);
    flat = Math.floor(flat / size);
  }
  return `[${idx.join(", ")}]`;
}

function compareSnapshots(ours: Snapshot, theirs: Snapshot, tol: Partial<Tolerance>, where: string): string | null {
  if (ours.dtype !== theirs.dtype) return `${where}: dtype ours ${ours.dtype}, torch ${theirs.dtype}`;
  if (ours.shape.length !== theirs.shape.length || ours.shape.some((s, i) => s !== theirs.shape[i])) {
    return `${where}: shape ours [${ours.shape.join(", ")}], torch [${theirs.shape.join(", ")}]`;
  }
  const a = ours.numbers();
  const b = theirs.numbers();
  if (!FLOATING.has(ours.dtype)) {
    if (ours.bytes.length === theirs.bytes.length && ours.bytes.every((v, i) => v === theirs.bytes[i])) return null;
    const bad = a.findIndex((v, i) => v !== b[i]);
    const count = a.filter((v, i) => v !== b[i]).length;
    return (
      `${where} (${ours.describe()}): ${count} of ${a.length} elements differ (exact match required); ` +
      `first at ${multiIndex(bad, ours.shape)}: ours ${a[bad]}, torch ${b[bad]}`
    );
  }
  const { rtol, atol } = { ...defaultTolerance(ours.dtype), ...tol };
  let count = 0;
  let worst = -1;
  let worstDiff = -1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    const diff = Number.isNaN(x) || Number.isNaN(y) ? Infinity : Math.abs(x - y);
    if (diff > atol + rtol * Math.abs(y)) count++;
    else continue;
    if (diff > worstDiff) {
      worstDiff = diff;
      worst = i;
    }
  }
  if (count === 0) return null;
  return (
    `${where} (${ours.describe()}): ${count} of ${a.length} elements out of tolerance (rtol ${rtol}, atol ${atol}); ` +
    `max |diff| ${worstDiff.toExponential(3)} at ${multiIndex(worst, ours.shape)}: ours ${a[worst]}, torch ${b[worst]}`
  );
}

function show(v: Tree): string {
  if (v instanceof Snapshot) return `tensor ${v.describe()}`;
  if (Array.isArray(v)) return `list of ${v.length}`;
  return JSON.stringify(v);
}

function compareTrees(ours: Tree, theirs: Tree, tol: Partial<Tolerance>, where: string, problems: string[]): void {
  if (theirs instanceof Snapshot) {
    if (!(ours instanceof Snapshot)) problems.push(`${where}: ours ${show(ours)}, torch ${show(theirs)}`);
    else {
      const problem = compareSnapshots(ours, theirs, tol, where);
      if (problem !== null) problems.push(problem);
    }
  } else if (Array.isArray(theirs)) {
    if (!Array.isArray(ours) || ours.length !== theirs.length) {
      problems.push(`${where}: ours ${show(ours)}, torch ${show(theirs)}`);
    } else {
      theirs.forEach((t, i) => compareTrees(ours[i] as Tree, t, tol, `${where}[${i}]`, problems));
    }
  } else if (typeof theirs === "number" && typeof ours === "number") {
    if (Number.isInteger(theirs) && Number.isInteger(ours) ? ours !== theirs : !numbersClose(ours, theirs, tol)) {
      problems.push(`${where}: ours ${ours}, torch ${theirs}`);
    }
  } else if (ours !== theirs) {
    problems.push(`${where}: ours ${show(ours)}, torch ${show(theirs)}`);
  }
}

function numbersClose(x: number, y: number, tol: Partial<Tolerance>): boolean {
  if (Number.isNaN(x) && Number.isNaN(y)) return true;
  if (x === y) return true;
  const { rtol, atol } = { ...defaultTolerance("float32"), ...tol };
  return Math.abs(x - y) <= atol + rtol * Math.abs(y);
}

// ---- the container --------------------------------------------------------------------------

type Node =
  | { tensor: number }
  | { int: number }
  | { float: number | "nan" | "inf" | "-inf" }
  | { bool: boolean }
  | { str: string }
  | { none: true }
  | { dtype: DType }
  | { json: unknown }
  | { list: Node[] };

interface TensorEntry {
  dtype: DType;
  shape: number[];
  offset: number;
  nbytes: number;
}

class ContainerWriter {
  readonly tensors: TensorEntry[] = [];
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  tensor(s: Snapshot): Node {
    const pad = (8 - (this.size % 8)) % 8;
    if (pad > 0) {
      this.chunks.push(new Uint8Array(pad));
      this.size += pad;
    }
    this.tensors.push({ dtype: s.dtype, shape: [...s.shape], offset: this.size, nbytes: s.bytes.length });
    this.chunks.push(s.bytes);
    this.size += s.bytes.length;
    return { tensor: this.tensors.length - 1 };
  }

  input(value: PyInput): Node {
    if (value instanceof Tensor) return this.tensor(Snapshot.of(value));
    if (Array.isArray(value)) return { list: value.map((v) => this.input(v)) };
    return { json: value };
  }

  encode(header: object): Buffer {
    const json = Buffer.from(JSON.stringify({ ...header, tensors: this.tensors }), "utf8");
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([length, json, ...this.chunks]);
  }
}

function readContainer(data: Buffer): { header: PyResponse; tensors: Snapshot[] } {
  const length = Number(data.readBigUInt64LE(0));
  const header = JSON.parse(data.subarray(8, 8 + length).toString("utf8")) as PyResponse;
  const blob = data.subarray(8 + length);
  const tensors = header.tensors.map(
    (e) => new Snapshot(e.dtype, e.shape, new Uint8Array(blob.subarray(e.offset, e.offset + e.nbytes))),
  );
  return { header, tensors };
}

interface PyRequestCase {
  name: string;
  expr: string;
  setup?: string;
  inputs: Record<string, Node>;
  grad?: string[];
  upstream?: (Node | null)[];
  after?: string[];
}

interface PyResponseCase {
  value?: Node;
  grads?: Record<string, Node>;
  after?: Record<string, Node>;
  error?: string;
}

interface PyResponse {
  results: PyResponseCase[];
  torch: string;
  tensors: TensorEntry[];
}

function decodeNode(node: Node, tensors: readonly Snapshot[]): Tree {
  if ("tensor" in node) return tensors[node.tensor] as Snapshot;
  if ("list" in node) return node.list.map((n) => decodeNode(n, tensors));
  if ("int" in node) return node.int;
  if ("float" in node) {
    const f = node.float;
    return f === "nan" ? NaN : f === "inf" ? Infinity : f === "-inf" ? -Infinity : f;
  }
  if ("bool" in node) return node.bool;
  if ("str" in node) return node.str;
  if ("dtype" in node) return node.dtype;
  if ("none" in node) return null;
  throw new Error(`opcheck.py returned an unexpected node ${JSON.stringify(node)}`);
}

interface DecodedResult {
  value: Tree;
  grads: Record<string, Tree>;
  after: Record<string, Tree>;
  error?: string;
}

/** Runs one python process over the batch; throws with Python's stderr when the process fails. */
function callPython(cases: PyRequestCase[], writer: ContainerWriter): DecodedResult[] {
  const dir = mkdtempSync(join(tmpdir(), "moco-opcheck-"));
  try {
    const request = join(dir, "request.bin");
    const response = join(dir, "response.bin");
    writeFileSync(request, writer.encode({ cases }));
    const run = spawnSync(PYTHON, [SCRIPT, request, response], { encoding: "utf8", timeout: 300_000 });
    if (run.error !== undefined) throw new Error(`could not run ${PYTHON} ${SCRIPT}: ${run.error.message}`);
    if (run.status !== 0) {
      throw new Error(`${PYTHON} ${SCRIPT} exited with status ${run.status}:\n${run.stderr}`);
    }
    const { header, tensors } = readContainer(readFileSync(response));
    const decodeRecord = (r: Record<string, Node> | undefined) =>
      Object.fromEntries(Object.entries(r ?? {}).map(([k, n]) => [k, decodeNode(n, tensors)]));
    return header.results.map((r) => ({
      value: r.value === undefined ? null : decodeNode(r.value, tensors),
      grads: decodeRecord(r.grads),
      after: decodeRecord(r.after),
      ...(r.error === undefined ? {} : { error: r.error }),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the low-level API: evaluate Python, get values back ------------------------------------

/** What a Python case can take as an input: tensors, JSON values, and lists of both. */
export type PyInput = Tensor | number | boolean | string | null | readonly PyInput[];

/** Python's results: tensors (new tensors owned by the caller's scope), numbers, lists, ... */
export type PyValue = Tensor | number | boolean | string | null | PyValue[];

export interface PyCase {
  name: string;
  /** A Python expression; `torch`, `F`, `math` and the inputs are in scope. */
  expr: string;
  /** Python statements run before `expr` in the same namespace. */
  setup?: string;
  inputs?: Record<string, PyInput>;
}

export interface PyResult {
  value: PyValue;
  error?: string;
}

function materialize(tree: Tree): PyValue {
  if (tree instanceof Snapshot) return tree.toTensor();
  if (Array.isArray(tree)) return tree.map(materialize);
  return tree;
}

/** Evaluates the cases in one Python process, in order (so RNG seeding in `setup` carries over). */
export function runPython(cases: readonly PyCase[]): PyResult[] {
  const writer = new ContainerWriter();
  const request = cases.map((c) => ({
    name: c.name,
    expr: c.expr,
    ...(c.setup === undefined ? {} : { setup: c.setup }),
    inputs: Object.fromEntries(Object.entries(c.inputs ?? {}).map(([k, v]) => [k, writer.input(v)])),
  }));
  return callPython(request, writer).map((r) => ({
    value: materialize(r.value),
    ...(r.error === undefined ? {} : { error: r.error }),
  }));
}

/** Asserts that our value (tensors, numbers, arrays, {values, indices}, ...) equals Python's. */
export function assertMatchesPython(ours: unknown, theirs: PyValue, label: string, tol: Partial<Tolerance> = {}): void {
  const problems: string[] = [];
  compareTrees(snapshotTree(ours), snapshotTree(theirs), tol, label, problems);
  if (problems.length > 0) assert.fail(problems.join("\n"));
}

// ---- the high-level API: one node:test test per case ----------------------------------------

export interface OpCase<I extends Record<string, PyInput> = Record<string, PyInput>> {
  name: string;
  /** The PyTorch side: an expression over the inputs (and `torch`, `F`, `math`). */
  expr: string;
  setup?: string;
  inputs?: I;
  /** Our side. Tensor inputs arrive as fresh clones (leaves requiring grad for `grad`). */
  ours: (inputs: I) => unknown;
  /** Inputs to differentiate; both sides backpropagate the same upstream gradient. */
  grad?: (keyof I & string)[];
  /** Inputs whose values after the call are compared (in-place updates such as running stats). */
  after?: (keyof I & string)[];
  /** Both sides must fail (our error message must match when a RegExp is given). */
  throws?: boolean | RegExp;
  /** Widened tolerance for values and for gradients; say why in the case. */
  tol?: Partial<Tolerance>;
  gradTol?: Partial<Tolerance>;
}

/** Declares a case with its inputs' types inferred for `ours`. */
export function op<I extends Record<string, PyInput>>(c: OpCase<I>): OpCase {
  return c as unknown as OpCase;
}

interface OurResult {
  value: Tree;
  grads: Record<string, Tree>;
  after: Record<string, Tree>;
  error?: Error;
}

/** A fixed pseudo-random upstream gradient in [-1, 1), from a seed (mulberry32), not torch's RNG. */
function upstreamFor(t: Tensor, seed: number): Tensor {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
  const values = Float32Array.from({ length: t.numel }, () => 2 * next() - 1);
  return torch.scope(() => {
    const f = torch.fromTypedArray(values, t.shape);
    return t.dtype === "float32" ? f : f.to(t.dtype);
  });
}

function cloneInputs(inputs: Record<string, PyInput>, grad: readonly string[]): Record<string, PyInput> {
  const copy = (v: PyInput): PyInput => (v instanceof Tensor ? v.detach().clone() : Array.isArray(v) ? v.map(copy) : v);
  const out: Record<string, PyInput> = {};
  for (const [name, value] of Object.entries(inputs)) {
    const c = copy(value);
    if (grad.includes(name)) {
      if (!(c instanceof Tensor)) throw new TypeError(`grad input ${name} must be a Tensor`);
      c.requiresGrad_(true);
    }
    out[name] = c;
  }
  return out;
}

function runOurs(c: OpCase, index: number, writer: ContainerWriter): { ours: OurResult; upstream: (Node | null)[] } {
  const grad = c.grad ?? [];
  let upstream: (Node | null)[] = [];
  try {
    const ours = torch.scope((): OurResult => {
      const args = cloneInputs(c.inputs ?? {}, grad);
      const value = c.ours(args);
      const result: OurResult = { value: snapshotTree(value), grads: {}, after: {} };
      if (grad.length > 0) {
        const outputs = flattenOutputs(value);
        const ups = outputs.map((t, i) =>
          t !== null && FLOATING.has(t.dtype) ? upstreamFor(t, (index + 1) * 7919 + i) : null,
        );
        upstream = ups.map((u) => (u === null ? null : writer.tensor(Snapshot.of(u))));
        let loss: Tensor | null = null;
        for (const [i, t] of outputs.entries()) {
          const u = ups[i];
          if (t === null || u == null || !t.requiresGrad) continue;
          const term = t.mul(u).sum();
          loss = loss === null ? term : loss.add(term);
        }
        if (loss === null) throw new Error("no output requires grad");
        loss.backward();
        for (const name of grad) {
          const g = (args[name] as Tensor).grad;
          result.grads[name] = g === null ? null : Snapshot.of(g);
        }
      }
      for (const name of c.after ?? []) result.after[name] = snapshotTree(args[name]);
      return result;
    });
    return { ours, upstream };
  } catch (error) {
    return { ours: { value: null, grads: {}, after: {}, error: error as Error }, upstream };
  }
}

function checkCase(c: OpCase, ours: OurResult, theirs: DecodedResult): void {
  const label = `${c.name} [${c.expr}]`;
  if (c.throws !== undefined && c.throws !== false) {
    assert.ok(ours.error !== undefined, `${label}: expected our side to throw, it returned ${show(ours.value)}`);
    assert.ok(theirs.error !== undefined, `${label}: expected PyTorch to raise, it returned ${show(theirs.value)}`);
    if (c.throws instanceof RegExp) assert.match(ours.error.message, c.throws, `${label}: our error message`);
    return;
  }
  if (ours.error !== undefined) {
    assert.fail(
      `${label}: our side threw ${ours.error.message}${theirs.error ? `; PyTorch too: ${theirs.error}` : ""}`,
    );
  }
  if (theirs.error !== undefined) assert.fail(`${label}: PyTorch raised ${theirs.error}`);
  const problems: string[] = [];
  compareTrees(ours.value, theirs.value, c.tol ?? {}, `${c.name}: value`, problems);
  for (const name of c.grad ?? []) {
    compareTrees(
      ours.grads[name] ?? null,
      theirs.grads[name] ?? null,
      c.gradTol ?? c.tol ?? {},
      `${c.name}: grad ${name}`,
      problems,
    );
  }
  for (const name of c.after ?? []) {
    compareTrees(
      ours.after[name] ?? null,
      theirs.after[name] ?? null,
      c.tol ?? {},
      `${c.name}: ${name} after the call`,
      problems,
    );
  }
  if (problems.length > 0) assert.fail(`${problems.join("\n")}\n  PyTorch: ${c.expr}`);
}

interface Batch {
  cases: readonly OpCase[];
  outcome?: { ours: OurResult[]; theirs: DecodedResult[] };
}

/** Every crossCheck of this test file; the first suite to run evaluates all of them at once. */
const batches: Batch[] = [];

function runBatches(): void {
  const todo = batches.filter((b) => b.outcome === undefined);
  const writer = new ContainerWriter();
  const request: PyRequestCase[] = [];
  const ours = todo.map((batch) => {
    const inputs = batch.cases.map((c) =>
      Object.fromEntries(Object.entries(c.inputs ?? {}).map(([k, v]) => [k, writer.input(v)])),
    );
    return batch.cases.map((c, i) => {
      const { ours: result, upstream } = runOurs(c, request.length, writer);
      request.push({
        name: c.name,
        expr: c.expr,
        ...(c.setup === undefined ? {} : { setup: c.setup }),
        inputs: inputs[i] ?? {},
        ...(c.grad === undefined ? {} : { grad: c.grad, upstream }),
        ...(c.after === undefined ? {} : { after: c.after }),
      });
      return result;
    });
  });
  const theirs = callPython(request, writer);
  let offset = 0;
  todo.forEach((batch, k) => {
    const n = batch.cases.length;
    batch.outcome = { ours: ours[k] ?? [], theirs: theirs.slice(offset, offset + n) };
    offset += n;
  });
}

/**
 * Registers a describe block with one test per case. Our side runs first (cases in order), then
 * one Python process evaluates the expressions of every crossCheck in the file, in order, then
 * each test compares.
 */
export function crossCheck(title: string, cases: readonly OpCase[]): void {
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`crossCheck ${title}: duplicate case name ${c.name}`);
    names.add(c.name);
  }
  const batch: Batch = { cases };
  batches.push(batch);
  describe(title, () => {
    before(() => {
      if (batch.outcome === undefined) runBatches();
    });
    for (const [i, c] of cases.entries()) {
      it(c.name, () => {
        const outcome = batch.outcome;
        assert.ok(outcome !== undefined, "the batch did not run");
        checkCase(c, outcome.ours[i] as OurResult, outcome.theirs[i] as DecodedResult);
      });
    }
  });
}
