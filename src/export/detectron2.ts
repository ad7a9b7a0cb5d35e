// Detection transfer as the official code does it: facebookresearch/moco's
// detection/convert-pretrain-to-detectron2.py renames the query encoder's torchvision keys to
// detectron2's ResNet names and pickles them as NumPy arrays:
//   {"model": {name: ndarray}, "__author__": "MOCO", "matching_heuristics": True}
// We write the same file without Python. The renaming repeats the script's string replacements in
// the script's order (so odd keys — the head, num_batches_tracked — land where the script puts
// them: "stem.fc.0.weight", ...; detectron2's matching heuristics ignore what it does not use).
// The pickle holds each array the way NumPy's own `ndarray.__reduce__` does
// (numpy.core.multiarray._reconstruct + __setstate__), so plain `pickle.load` rebuilds writable
// arrays with NumPy 1.x and 2.x alike (2.x still resolves numpy.core.* when unpickling).
import { MocoError } from "../errors.js";
import type { Tensor } from "../torch/index.js";

export class Detectron2ExportError extends MocoError {
  override name = "Detectron2ExportError";
  constructor(message: string) {
    super("ERR_DETECTRON2_EXPORT", message);
  }
}

/** The official script's renaming of one key of `module.encoder_q.` (already stripped). */
export function detectron2Name(key: string): string {
  let k = key;
  if (!k.includes("layer")) k = `stem.${k}`;
  for (const t of [1, 2, 3, 4]) k = k.replaceAll(`layer${t}`, `res${t + 1}`);
  for (const t of [1, 2, 3]) k = k.replaceAll(`bn${t}`, `conv${t}.norm`);
  k = k.replaceAll("downsample.0", "shortcut");
  k = k.replaceAll("downsample.1", "shortcut.norm");
  return k;
}

/** NumPy's dtype string for the tensor dtypes a ResNet state dict holds. */
const NUMPY_DTYPES: Readonly<Partial<Record<string, { descr: string; size: number }>>> = {
  float32: { descr: "f4", size: 4 },
  float64: { descr: "f8", size: 8 },
  float16: { descr: "f2", size: 2 },
  int64: { descr: "i8", size: 8 },
  int32: { descr: "i4", size: 4 },
  uint8: { descr: "u1", size: 1 },
};

// Pickle opcodes (Lib/pickletools.py); protocol 3 is enough: BINBYTES carries raw array data.
const PROTO = 0x80;
const STOP = 0x2e;
const GLOBAL = 0x63;
const REDUCE = 0x52;
const BUILD = 0x62;
const MARK = 0x28;
const TUPLE = 0x74;
const TUPLE1 = 0x85;
const TUPLE3 = 0x87;
const EMPTY_DICT = 0x7d;
const SETITEMS = 0x75;
const BINUNICODE = 0x58;
const BINBYTES = 0x42;
const BININT = 0x4a;
const NONE = 0x4e;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;

class PickleWriter {
  readonly #chunks: Uint8Array[] = [];

  op(...codes: number[]): void {
    this.#chunks.push(Uint8Array.from(codes));
  }

  u32(value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    this.#chunks.push(b);
  }

  int(value: number): void {
    this.op(BININT);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, value, true);
    this.#chunks.push(b);
  }

  str(value: string): void {
    const bytes = new TextEncoder().encode(value);
    this.op(BINUNICODE);
    this.u32(bytes.length);
    this.#chunks.push(bytes);
  }

  bytes(data: Uint8Array): void {
    this.op(BINBYTES);
    this.u32(data.length);
    this.#chunks.push(data);
  }

  global(module: string, name: string): void {
    this.op(GLOBAL);
    this.#chunks.push(new TextEncoder().encode(`${module}\n${name}\n`));
  }

  result(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/** One ndarray, as `pickle.dumps(array, protocol=3)` spells it (C order). */
function writeArray(w: PickleWriter, name: string, tensor: Tensor): void {
  const dtype = NUMPY_DTYPES[tensor.dtype];
  if (dtype === undefined)
    throw new Detectron2ExportError(
      `detectron2 export: ${name} has dtype ${tensor.dtype}, which NumPy export does not cover`,
    );
  const contiguous = tensor.contiguous();
  let data: Uint8Array;
  try {
    data = contiguous.toBytes();
  } finally {
    contiguous.dispose();
  }
  if (data.length !== tensor.numel * dtype.size)
    throw new Detectron2ExportError(
      `detectron2 export: ${name}: ${data.length} bytes for ${tensor.numel} ${tensor.dtype} elements`,
    );
  // _reconstruct(ndarray, (0,), b"b")
  w.global("numpy.core.multiarray", "_reconstruct");
  w.global("numpy", "ndarray");
  w.int(0);
  w.op(TUPLE1);
  w.bytes(new TextEncoder().encode("b"));
  w.op(TUPLE3, REDUCE);
  // __setstate__((1, shape, dtype, is_fortran, raw))
  w.op(MARK);
  w.int(1);
  w.op(MARK);
  for (const d of tensor.shape) w.int(d);
  w.op(TUPLE);
  w.global("numpy", "dtype");
  w.str(dtype.descr);
  w.op(NEWFALSE, NEWTRUE, TUPLE3, REDUCE);
  w.op(MARK);
  w.int(3);
  w.str(dtype.size === 1 ? "|" : "<");
  w.op(NONE, NONE, NONE);
  w.int(-1);
  w.int(-1);
  w.int(0);
  w.op(TUPLE, BUILD);
  w.op(NEWFALSE);
  w.bytes(data);
  w.op(TUPLE, BUILD);
}

/**
 * The bytes of the detectron2 weights file for a query encoder's torchvision-named state dict (the
 * `module.encoder_q.` prefix already removed, head included as the official script keeps it).
 */
export function detectron2Pickle(stateDict: ReadonlyMap<string, Tensor>): Buffer {
  if (stateDict.size === 0) throw new Detectron2ExportError("detectron2 export: the state dict is empty");
  const renamed = new Map<string, [string, Tensor]>();
  for (const [key, tensor] of stateDict) {
    const name = detectron2Name(key);
    const clash = renamed.get(name);
    if (clash !== undefined)
      throw new Detectron2ExportError(`detectron2 export: ${key} and ${clash[0]} both become ${name}`);
    renamed.set(name, [key, tensor]);
  }
  const w = new PickleWriter();
  w.op(PROTO, 3);
  w.op(EMPTY_DICT, MARK);
  w.str("model");
  w.op(EMPTY_DICT, MARK);
  for (const [name, [, tensor]] of renamed) {
    w.str(name);
    writeArray(w, name, tensor);
  }
  w.op(SETITEMS);
  w.str("__author__");
  w.str("MOCO");
  w.str("matching_heuristics");
  w.op(NEWTRUE);
  w.op(SETITEMS, STOP);
  return w.result();
}
