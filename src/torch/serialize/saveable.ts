// What a checkpoint holds, in its own module: every serialize/* file needs the type, and
// importing it from index.ts (which imports them) would make an import cycle.
import type { Tensor } from "../tensor.js";

/**
 * A value a checkpoint holds. On load, Python's dict becomes a plain object when all its keys are
 * strings (order kept) and a Map otherwise; list, tuple and set become arrays; int becomes a
 * number when it is a safe integer, else a bigint; bytes become Uint8Array; None becomes null.
 * On save, safe integers become Python ints and other numbers floats, Map keys keep their type,
 * and undefined becomes None.
 */
export type Saveable =
  | Tensor
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | Saveable[]
  | Map<string | number, Saveable>
  | { [key: string]: Saveable };
