// Tensors in the files other tools read and write: safetensors and NumPy .npy. (PyTorch's own
// torch.save format is in src/torch/serialize.)
export {
  SafetensorsRowWriter,
  readSafetensors,
  writeSafetensors,
  type SafetensorsDType,
  type SafetensorsRowWriterOptions,
} from "./safetensors.js";
export { NpyRowWriter, readNpy, writeNpy, type NpyRowWriterOptions } from "./npy.js";
