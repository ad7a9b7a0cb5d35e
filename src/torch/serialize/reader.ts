// torch.save's checkpoint formats → JS values: the zip format here, the legacy one in legacy.ts.
import type { Saveable } from "./saveable.js";
import { isLegacyCheckpoint, readLegacyCheckpoint } from "./legacy.js";
import { unpickleCheckpoint, type StorageBytes } from "./rebuild.js";
import { ZipReader, type ByteSource } from "./zip.js";

/** Where a tar file says "ustar": the first versions of torch.save wrote tar archives. */
const TAR_MAGIC_OFFSET = 257;
const TAR_MAGIC = "ustar";
/** A zip archive starts with a local header ("PK\x03\x04"), whatever its data holds at byte 257. */
const ZIP_MAGIC = "PK\x03\x04";
const latin1 = new TextDecoder("latin1");

/** Reads a checkpoint from `source`; `label` (a path or "<buffer>") is named in every error. */
export function readCheckpoint(source: ByteSource, label: string): Saveable {
  const context = `load: ${label}`;
  if (isLegacyCheckpoint(source)) return readLegacyCheckpoint(source, context);
  if (isTar(source)) {
    throw new Error(
      `${context}: this is the tar format of early PyTorch versions, which is not supported; re-save it with a newer PyTorch`,
    );
  }
  const zip = ZipReader.open(source, context);
  const root = findRoot(zip, context);
  const byteorder = zip.has(`${root}byteorder`)
    ? new TextDecoder().decode(zip.read(`${root}byteorder`)).trim()
    : "little";
  if (byteorder !== "little") throw new Error(`${context}: ${byteorder}-endian checkpoints are not supported`);

  const recordBytes: StorageBytes = (storage, dtype, byteLength) => {
    const record = `${root}data/${storage.key}`;
    if (!zip.has(record)) throw new Error(`${context}: storage record '${record}' is missing from the archive`);
    const bytes = zip.read(record);
    if (bytes.length < byteLength) {
      throw new Error(
        `${context}: storage record '${record}' holds ${bytes.length} bytes; ${storage.numel} ${dtype} need ${byteLength}`,
      );
    }
    return bytes.subarray(0, byteLength);
  };
  return unpickleCheckpoint(zip.read(`${root}data.pkl`), context, recordBytes, "zip");
}

function isTar(source: ByteSource): boolean {
  if (source.size < TAR_MAGIC_OFFSET + TAR_MAGIC.length) return false;
  const text = (offset: number, length: number): string => latin1.decode(source.read(offset, length));
  return text(0, ZIP_MAGIC.length) !== ZIP_MAGIC && text(TAR_MAGIC_OFFSET, TAR_MAGIC.length) === TAR_MAGIC;
}

/** The archive's root folder, with its trailing slash: PyTorch names it after the file. */
function findRoot(zip: ZipReader, context: string): string {
  const roots = new Set<string>();
  for (const name of zip.entries.keys()) {
    const slash = name.indexOf("/");
    roots.add(slash < 0 ? "" : name.slice(0, slash + 1));
  }
  const withData = [...roots].filter((root) => zip.has(`${root}data.pkl`));
  if (withData.length === 1) {
    const root = withData[0]!;
    if (zip.has(`${root}constants.pkl`)) {
      throw new Error(`${context}: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint`);
    }
    return root;
  }
  if (withData.length > 1) {
    throw new Error(`${context}: the archive has several root folders with a data.pkl (${withData.join(", ")})`);
  }
  throw new Error(`${context}: the zip archive has no data.pkl record, so it is not a torch.save checkpoint`);
}
