// Memory formats, named as PyTorch's torch.contiguous_format / channels_last / channels_last_3d /
// preserve_format. A channels-last tensor keeps its logical shape (N, C, H, W) while its elements
// are stored in N, H, W, C order, the layout oneDNN's convolutions prefer.

export type MemoryFormat = "contiguous" | "channelsLast" | "channelsLast3d" | "preserve";

const FORMATS: readonly MemoryFormat[] = ["contiguous", "channelsLast", "channelsLast3d", "preserve"];

export function checkMemoryFormat(value: unknown, op: string): MemoryFormat {
  if (typeof value !== "string" || !(FORMATS as readonly string[]).includes(value)) {
    throw new TypeError(`${op}: memoryFormat must be one of ${FORMATS.join(", ")}; got ${String(value)}`);
  }
  return value as MemoryFormat;
}
