// The pickle half of the checkpoint format: a strict unpickler (runs nothing, resolves only an
// allowlist of globals) and a protocol-2 pickler. See unpickler.ts and pickler.ts.
export { unpickle, type StorageRef, type TensorArgs, type UnpickleHooks, type Unpickled } from "./unpickler.js";
export { encodeLong, pickle, type PickleHooks, type TensorRecord } from "./pickler.js";
