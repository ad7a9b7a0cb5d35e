// PyTorch's typed-storage class names (what torch.save pickles as a tensor's storage type) for
// the dtypes moco-ts has. Other storages (complex, quantized, untyped) are refused on load.
import type { DType } from "../dtype.js";

const STORAGE_TYPE_OF: Readonly<Record<DType, string>> = {
  float32: "FloatStorage",
  float64: "DoubleStorage",
  float16: "HalfStorage",
  bfloat16: "BFloat16Storage",
  int64: "LongStorage",
  int32: "IntStorage",
  int16: "ShortStorage",
  int8: "CharStorage",
  uint8: "ByteStorage",
  bool: "BoolStorage",
};

const DTYPE_OF: ReadonlyMap<string, DType> = new Map(
  (Object.entries(STORAGE_TYPE_OF) as [DType, string][]).map(([dtype, storage]) => [storage, dtype]),
);

export function storageTypeOf(dtype: DType): string {
  return STORAGE_TYPE_OF[dtype];
}

/** The dtype of a storage class name like "FloatStorage", or undefined when unsupported. */
export function dtypeOfStorageType(storageType: string): DType | undefined {
  return DTYPE_OF.get(storageType);
}

export const SUPPORTED_STORAGE_TYPES: readonly string[] = Object.values(STORAGE_TYPE_OF);
