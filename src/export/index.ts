// Exporting trained encoders to formats other runtimes load: ONNX.
export { MAX_OPSET, MIN_OPSET, exportOnnx, writeOnnx, type OnnxExportOptions } from "./onnx/export.js";
