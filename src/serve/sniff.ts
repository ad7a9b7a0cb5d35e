// What an upload is, from its first bytes: the Content-Type header is the client's claim, the magic
// bytes are the file's. Only the three formats the encoder pipeline decodes (sharp: JPEG, PNG, WebP).
export type ImageFormat = "jpeg" | "png" | "webp";

export const IMAGE_EXTENSIONS: Readonly<Record<ImageFormat, string>> = { jpeg: "jpg", png: "png", webp: "webp" };

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  return prefix.every((b, i) => bytes[at + i] === b);
}

/** The format `bytes` start with, or null when they are not a JPEG, PNG or WebP file. */
export function sniffImage(bytes: Uint8Array): ImageFormat | null {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "jpeg";
  if (startsWith(bytes, PNG)) return "png";
  // RIFF....WEBP
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && startsWith(bytes, [0x57, 0x45, 0x42, 0x50], 8)) return "webp";
  return null;
}
