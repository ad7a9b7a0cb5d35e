// JS values → torch.save's zip checkpoint. Tensors that share a storage (views of one another)
// share one storage record, so that Python's torch.load gives back views of one storage too.
import { noGrad } from "../autograd.js";
import type { DType } from "../dtype.js";
import { Tensor } from "../tensor.js";
import { pickle, type TensorRecord } from "./pickler.js";
import { storageTypeOf } from "./storage-types.js";
import { ZipWriter, type ByteSink, type ZipWriterOptions } from "./zip.js";

/** One storage record: the span of a native storage that its tensors reach. */
interface PlannedStorage {
  readonly key: string;
  readonly dtype: DType;
  /** Any tensor of the group; the span is read through it. */
  readonly source: Tensor;
  /** First and one-past-last element (in the native storage) that the group's tensors reach. */
  readonly start: number;
  readonly end: number;
}

interface Plan {
  readonly records: Map<Tensor, TensorRecord>;
  readonly storages: PlannedStorage[];
}

/** Tensors in `value`, in the order the pickler meets them, each once. */
function collectTensors(value: unknown, op: string): Tensor[] {
  const found: Tensor[] = [];
  const seen = new Set<object>();
  const visit = (item: unknown, where: string): void => {
    if (typeof item !== "object" || item === null || seen.has(item)) return;
    seen.add(item);
    if (item instanceof Tensor) {
      if (item.isDisposed) throw new Error(`${op}: the tensor at ${where} has been disposed`);
      found.push(item);
    } else if (Array.isArray(item)) {
      item.forEach((element, i) => visit(element, `${where}[${i}]`));
    } else if (item instanceof Map) {
      for (const [key, element] of item) visit(element, `${where}[${JSON.stringify(key)}]`);
    } else if (!(item instanceof Uint8Array)) {
      for (const key of Object.keys(item)) visit((item as Record<string, unknown>)[key], `${where}.${key}`);
    }
  };
  visit(value, "value");
  return found;
}

/** Last element a tensor reaches, relative to its storage, or undefined when it has none. */
function lastElement(tensor: Tensor): number | undefined {
  const shape = tensor.shape;
  if (shape.some((n) => n === 0)) return undefined;
  const strides = tensor.strides;
  return shape.reduce((end, n, i) => end + (n - 1) * strides[i]!, tensor.storageOffset);
}

function planStorages(tensors: readonly Tensor[], op: string): Plan {
  const groups = new Map<string, Tensor[]>();
  for (const tensor of tensors) {
    const id = tensor.storageId;
    const group = groups.get(id);
    if (group === undefined) groups.set(id, [tensor]);
    else group.push(tensor);
  }
  const records = new Map<Tensor, TensorRecord>();
  const storages: PlannedStorage[] = [];
  for (const group of groups.values()) {
    const first = group[0]!;
    const dtype = first.dtype;
    for (const tensor of group) {
      if (tensor.dtype !== dtype) {
        throw new Error(
          `${op}: tensors that share one storage must have one dtype (found ${dtype} and ${tensor.dtype})`,
        );
      }
    }
    let start = Infinity;
    let end = -Infinity;
    for (const tensor of group) {
      const last = lastElement(tensor);
      if (last === undefined) continue;
      start = Math.min(start, tensor.storageOffset);
      end = Math.max(end, last + 1);
    }
    if (start === Infinity) start = end = 0; // only empty tensors
    const key = String(storages.length);
    storages.push({ key, dtype, source: first, start, end });
    for (const tensor of group) {
      records.set(tensor, {
        storageType: storageTypeOf(dtype),
        key,
        storageNumel: end - start,
        storageOffset: lastElement(tensor) === undefined ? 0 : tensor.storageOffset - start,
        size: tensor.shape,
        stride: tensor.strides,
        requiresGrad: tensor.requiresGrad,
      });
    }
  }
  return { records, storages };
}

/** The raw little-endian elements [start, end) of a tensor's storage. */
function storageBytes(storage: PlannedStorage): Uint8Array {
  if (storage.end === storage.start) return new Uint8Array(0);
  const span = noGrad(() => storage.source.asStrided([storage.end - storage.start], [1], storage.start));
  try {
    return span.toBytes();
  } finally {
    span.dispose();
  }
}

/**
 * Writes `value` as a torch.save (zip, torch >= 1.6) checkpoint whose records live under
 * `<archiveName>/`. Everything is checked before the first byte goes to `sink`.
 */
export function writeCheckpoint(
  value: unknown,
  sink: ByteSink,
  archiveName: string,
  op: string,
  zipOptions: ZipWriterOptions = {},
): void {
  const plan = planStorages(collectTensors(value, op), op);
  const dataPkl = pickle(
    value,
    {
      tensorRecord: (item) => {
        if (!(item instanceof Tensor)) return undefined;
        const record = plan.records.get(item);
        if (record === undefined) throw new Error(`${op}: internal error: a tensor was not planned`);
        return record;
      },
    },
    op,
  );
  const zip = new ZipWriter(sink, zipOptions);
  const root = `${archiveName}/`;
  zip.add(`${root}data.pkl`, dataPkl);
  zip.add(`${root}byteorder`, new TextEncoder().encode("little"));
  for (const storage of plan.storages) zip.add(`${root}data/${storage.key}`, storageBytes(storage));
  zip.add(`${root}version`, new TextEncoder().encode("3\n"));
  zip.finish();
}
