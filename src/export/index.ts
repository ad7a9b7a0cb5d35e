// Exporting trained encoders to formats other runtimes load: ONNX, detectron2 weights, and the Python
// that builds a torchvision network torchvision cannot make by itself.
export { MAX_OPSET, MIN_OPSET, exportOnnx, writeOnnx, type OnnxExportOptions } from "./onnx/export.js";
export { detectron2Pickle, detectron2Name, Detectron2ExportError } from "./detectron2.js";
export { torchvisionBuilderScript, builderScriptPath } from "./torchvision-script.js";
export { readOnnxMetadata, readOnnxInput, OnnxFormatError } from "./onnx/metadata.js";
