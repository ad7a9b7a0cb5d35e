// Element types, named as in PyTorch without the `torch.` prefix. The codes are at::ScalarType's
// enum values, which have been stable across libtorch releases.

export type DType =
  "uint8" | "int8" | "int16" | "int32" | "int64" | "float16" | "float32" | "float64" | "bool" | "bfloat16";

interface DTypeInfo {
  readonly code: number;
  readonly bytes: number;
  readonly isFloating: boolean;
  readonly torchName: string;
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  uint8: { code: 0, bytes: 1, isFloating: false, torchName: "torch.uint8" },
  int8: { code: 1, bytes: 1, isFloating: false, torchName: "torch.int8" },
  int16: { code: 2, bytes: 2, isFloating: false, torchName: "torch.int16" },
  int32: { code: 3, bytes: 4, isFloating: false, torchName: "torch.int32" },
  int64: { code: 4, bytes: 8, isFloating: false, torchName: "torch.int64" },
  float16: { code: 5, bytes: 2, isFloating: true, torchName: "torch.float16" },
  float32: { code: 6, bytes: 4, isFloating: true, torchName: "torch.float32" },
  float64: { code: 7, bytes: 8, isFloating: true, torchName: "torch.float64" },
  bool: { code: 11, bytes: 1, isFloating: false, torchName: "torch.bool" },
  bfloat16: { code: 15, bytes: 2, isFloating: true, torchName: "torch.bfloat16" },
};

const BY_CODE = new Map<number, DType>(
  (Object.entries(DTYPES) as [DType, DTypeInfo][]).map(([name, info]) => [info.code, name]),
);

export function dtypeFromCode(code: number): DType {
  const name = BY_CODE.get(code);
  if (name === undefined) throw new Error(`unsupported libtorch scalar type code ${code}`);
  return name;
}

export function isDType(value: unknown): value is DType {
  return typeof value === "string" && Object.hasOwn(DTYPES, value);
}

export function checkDType(value: unknown, op: string): DType {
  if (!isDType(value)) {
    throw new TypeError(`${op}: dtype must be one of ${Object.keys(DTYPES).join(", ")}; got ${String(value)}`);
  }
  return value;
}

/** The typed array that holds elements of each dtype on the JS side. */
export interface TypedArrayFor {
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  float16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
  bool: Uint8Array;
  bfloat16: Uint16Array;
}

export type AnyTypedArray = TypedArrayFor[DType];

export function typedArrayView<D extends DType>(dtype: D, buffer: ArrayBuffer): TypedArrayFor[D] {
  const views: { [K in DType]: (b: ArrayBuffer) => TypedArrayFor[K] } = {
    uint8: (b) => new Uint8Array(b),
    int8: (b) => new Int8Array(b),
    int16: (b) => new Int16Array(b),
    int32: (b) => new Int32Array(b),
    int64: (b) => new BigInt64Array(b),
    float16: (b) => new Uint16Array(b),
    float32: (b) => new Float32Array(b),
    float64: (b) => new Float64Array(b),
    bool: (b) => new Uint8Array(b),
    bfloat16: (b) => new Uint16Array(b),
  };
  return views[dtype](buffer);
}

/** The dtype a typed array maps to when no dtype is given (Uint8Array → uint8, not bool). */
export function dtypeOfTypedArray(data: AnyTypedArray): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "uint8";
  throw new TypeError("Uint16Array is ambiguous (float16 or bfloat16): pass a dtype");
}
