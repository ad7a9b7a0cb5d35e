// The .npy header (numpy/lib/format.py): "\x93NUMPY", a version (1.0, 2.0 or 3.0), the header's
// length (u16 in 1.0, u32 after), then a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and a newline so
// that the data starts at a multiple of 64 bytes. Written byte for byte as numpy 1.24 writes it.
import { DTYPES, type DType } from "../torch/index.js";

const MAGIC = Uint8Array.from([0x93, ...Buffer.from("NUMPY", "latin1")]);
/** Magic and version. */
export const PREAMBLE_BYTES = MAGIC.length + 2;
const ALIGNMENT = 64;
/**
 * numpy leaves room after the dict for a first dimension of up to 21 digits, so that a file
 * growing along it can rewrite its header in place; NpyRowWriter relies on it.
 */
const GROWTH_AXIS_MAX_DIGITS = 21;

/** numpy's type strings, little-endian ('|' where byte order does not apply). */
const DESCR_OF: Readonly<Partial<Record<DType, string>>> = {
  float16: "<f2",
  float32: "<f4",
  float64: "<f8",
  int8: "|i1",
  int16: "<i2",
  int32: "<i4",
  int64: "<i8",
  uint8: "|u1",
  bool: "|b1",
};
const DTYPE_OF = new Map(Object.entries(DESCR_OF).map(([dtype, descr]) => [descr.slice(1), dtype as DType]));
const SUPPORTED = Object.keys(DESCR_OF).join(", ");

/** numpy's type string for `dtype`, or undefined for bfloat16, which numpy lacks. */
export function descrOf(dtype: DType): string | undefined {
  return DESCR_OF[dtype];
}

export function supportedNpyDtypes(): string {
  return SUPPORTED;
}

/** The whole header, data alignment included, in version 1.0. */
export function encodeNpyHeader(descr: string, shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  if (shape.length > 0) dict += " ".repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  const lengthBytes = 2;
  // numpy always pads, a full 64 bytes when already aligned, and ends with a newline.
  const unpadded = PREAMBLE_BYTES + lengthBytes + dict.length + 1;
  const padding = ALIGNMENT - (unpadded % ALIGNMENT);
  const text = `${dict}${" ".repeat(padding)}\n`;
  const out = Buffer.alloc(PREAMBLE_BYTES + lengthBytes + text.length);
  out.set(MAGIC, 0);
  out[MAGIC.length] = 1;
  out[MAGIC.length + 1] = 0;
  out.writeUInt16LE(text.length, PREAMBLE_BYTES);
  out.write(text, PREAMBLE_BYTES + lengthBytes, "latin1");
  return out;
}

/** What `readPreamble` learns from the first bytes: how long the dict is and how it is encoded. */
export interface NpyPreamble {
  readonly lengthBytes: 2 | 4;
  readonly encoding: "latin1" | "utf8";
}

export function readPreamble(bytes: Uint8Array, fail: (message: string) => never): NpyPreamble {
  if (!MAGIC.every((byte, i) => bytes[i] === byte)) fail("not a .npy file (no \\x93NUMPY magic)");
  const [major, minor] = [bytes[MAGIC.length]!, bytes[MAGIC.length + 1]!];
  if (minor !== 0 || major < 1 || major > 3) fail(`unsupported .npy format version ${major}.${minor}`);
  return major === 1
    ? { lengthBytes: 2, encoding: "latin1" }
    : { lengthBytes: 4, encoding: major === 2 ? "latin1" : "utf8" };
}

/** The array's dtype and shape from the dict literal; refuses what moco-ts cannot hold. */
export function decodeNpyDict(text: string, fail: (message: string) => never): { dtype: DType; shape: number[] } {
  const dict = parseDict(text, fail);
  const { descr, fortran_order: fortranOrder, shape } = Object.fromEntries(dict);
  if (typeof descr !== "string") {
    fail(descr === undefined ? "the header has no 'descr'" : "structured arrays (a list 'descr') are not supported");
  }
  if (typeof fortranOrder !== "boolean") fail("the header has no boolean 'fortran_order'");
  if (!Array.isArray(shape) || !shape.every((n): n is number => typeof n === "number")) {
    fail("the header has no 'shape' tuple of integers");
  }
  if (fortranOrder) fail("Fortran-ordered arrays are not supported; save a C-ordered copy (np.ascontiguousarray)");
  const match = /^([<>|=])([a-zA-Z]\d+)$/.exec(descr);
  const dtype = match === null ? undefined : DTYPE_OF.get(match[2]!);
  if (match === null || dtype === undefined) fail(`dtype '${descr}' is not supported (supported: ${SUPPORTED})`);
  if (match[1] === ">" && DTYPES[dtype].bytes > 1) {
    fail(`big-endian data ('${descr}') is not supported; save it little-endian (a.astype('<${match[2]}'))`);
  }
  return { dtype, shape };
}

type PyLiteral = string | boolean | number | PyLiteral[];

/**
 * A strict reader for the one literal numpy writes: a dict of str keys whose values are str,
 * True/False, non-negative ints (Python 2's 3L too), and tuples or lists of those. Nothing is
 * evaluated.
 */
function parseDict(text: string, fail: (message: string) => never): [string, PyLiteral][] {
  let pos = 0;
  const bad = (what: string): never => fail(`malformed header dict at character ${pos}: ${what}`);
  const skip = (): void => {
    while (pos < text.length && " \t\n\r".includes(text[pos]!)) pos++;
  };
  const eat = (token: string): boolean => {
    skip();
    if (!text.startsWith(token, pos)) return false;
    pos += token.length;
    return true;
  };
  const sequence = <T>(close: string, item: () => T): T[] => {
    const items: T[] = [];
    while (!eat(close)) {
      items.push(item());
      if (eat(",")) continue;
      if (!eat(close)) bad(`expected ',' or '${close}'`);
      break;
    }
    return items;
  };
  const string = (): string => {
    skip();
    const quote = text[pos];
    const end = quote === "'" || quote === '"' ? text.indexOf(quote, pos + 1) : -1;
    if (end < 0 || text.slice(pos + 1, end).includes("\\")) return bad("expected a plain string");
    const value = text.slice(pos + 1, end);
    pos = end + 1;
    return value;
  };
  const value = (): PyLiteral => {
    if (eat("True")) return true;
    if (eat("False")) return false;
    if (eat("(")) return sequence(")", value);
    if (eat("[")) return sequence("]", value);
    const integer = /^(\d+)L?/.exec(text.slice(pos));
    if (integer === null) return string();
    pos += integer[0].length;
    const number = Number(integer[1]);
    return Number.isSafeInteger(number) ? number : bad("an integer too large");
  };
  if (!eat("{")) bad("expected '{'");
  const entries = sequence("}", (): [string, PyLiteral] => {
    const key = string();
    if (!eat(":")) bad("expected ':'");
    return [key, value()];
  });
  skip();
  if (pos !== text.length) bad("unexpected text after the dict");
  return entries;
}
