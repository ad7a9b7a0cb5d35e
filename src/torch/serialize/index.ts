// torch.save / torch.load compatible checkpoints, in TypeScript: libtorch 1.13's own pickle_load
// rejects ordinary Python checkpoints. Saving writes the zip format of torch >= 1.6; loading also
// reads the legacy format before it (legacy.ts). Loading never executes anything from the file;
// see unpickler.ts for what it accepts.
import { closeSync, fstatSync, openSync } from "node:fs";
import { basename } from "node:path";
import { readCheckpoint } from "./reader.js";
import type { Saveable } from "./saveable.js";
import { writeCheckpoint } from "./writer.js";
import { AtomicFile } from "../../util/atomic-file.js";
import { bufferSource, fileSource, MemorySink, type ZipWriterOptions } from "./zip.js";

export type { Saveable } from "./saveable.js";

export interface SaveToBufferOptions {
  /** The archive's root folder; PyTorch uses the file's stem, or "archive" for buffers. */
  readonly archiveName?: string;
  /** ZIP64 records even when not needed (for tests of big-checkpoint handling). */
  readonly zip64?: ZipWriterOptions["zip64"];
}

/** PyTorch names the root folder after the file name up to its first dot. */
function archiveNameFor(path: string): string {
  const stem = basename(path).split(".")[0] ?? "";
  return stem === "" ? "archive" : stem;
}

function checkArchiveName(name: string): string {
  if (name === "" || name.includes("/"))
    throw new TypeError(`save: archiveName must be a non-empty name without '/', got '${name}'`);
  return name;
}

/** The checkpoint as bytes, e.g. to send over a socket. */
export function saveToBuffer(value: Saveable, options: SaveToBufferOptions = {}): Uint8Array {
  const sink = new MemorySink();
  writeCheckpoint(value, sink, checkArchiveName(options.archiveName ?? "archive"), "saveToBuffer", {
    zip64: options.zip64 ?? "auto",
  });
  return sink.bytes();
}

/**
 * Writes `value` to `path` in torch.save's format. Atomic (src/util/atomic-file.ts): a crash or an
 * error never leaves a half-written checkpoint at `path`, which keeps its previous content.
 */
export function save(value: Saveable, path: string): void {
  const file = AtomicFile.create(path, "save");
  try {
    writeCheckpoint(value, file, archiveNameFor(path), "save");
    file.commit();
  } catch (error) {
    file.abort();
    throw error;
  }
}

/** Reads a checkpoint from bytes; `label` names it in error messages. */
export function loadFromBuffer(bytes: Uint8Array, label = "<buffer>"): Saveable {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("loadFromBuffer: bytes must be a Uint8Array");
  return readCheckpoint(bufferSource(bytes), label);
}

/**
 * Reads a checkpoint written by Python's torch.save (the zip format of torch >= 1.6, or the legacy
 * format before it, e.g. the released MoCo checkpoints) or by `save`. Tensors come back on the CPU
 * whatever device they were saved from; tensors that shared a storage share one again.
 */
export function load(path: string): Saveable {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : (error as Error).message;
    throw new Error(`load: cannot open ${path}: ${reason}`, { cause: error });
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`load: ${path} is not a file`);
    return readCheckpoint(fileSource(fd), path);
  } finally {
    closeSync(fd);
  }
}
