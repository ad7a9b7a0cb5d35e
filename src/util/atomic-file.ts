// The one atomic writer: every file that the library replaces whole (checkpoints, .npy,
// safetensors, ONNX, JSON, CSV, HTML) is written beside its destination and renamed over it only
// when complete, so that a crash or an error never leaves a half-written file at the destination:
// a reader sees the previous file or the new one. Durability takes two fsyncs: the file's (its
// bytes reach the disk before the rename can) and, after the rename, its directory's (the rename
// itself survives a power loss). This module sits at the bottom of the layers (it imports only
// node:fs), so src/torch/serialize and src/io share it.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

import { removeStaleTemporaries } from "./stale-temporaries.js";

/** writeSync moves at most ~2 GiB per call. */
const MAX_WRITE = 1 << 30;

let temporaries = 0;

function cannotWrite(op: string, path: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`${op}: cannot write ${path}: ${reason}`, { cause: error });
}

/**
 * Flushes the directory entry of a rename. Windows cannot open a directory for fsync, and some
 * file systems (FUSE, some network mounts) refuse fsync on a directory with EINVAL/ENOTSUP: there
 * the rename is as durable as the platform makes it, and the write still succeeded.
 */
function fsyncDirectory(dir: string): void {
  if (process.platform === "win32") return;
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "ENOTSUP" && code !== "EISDIR") throw error;
  } finally {
    closeSync(fd);
  }
}

/**
 * A file being written atomically: `create`, then `write`/`writeAt`, then `commit` (the file
 * appears at `path`) or `abort` (the temporary file goes, `path` keeps what it held). Streaming
 * writers (row files, checkpoints) use it directly; whole buffers go through `writeFileAtomic`.
 */
export class AtomicFile {
  private fd: number | null;
  /** Where the next `write` goes. */
  private position = 0;

  private constructor(
    readonly path: string,
    private readonly temporary: string,
    fd: number,
    private readonly op: string,
  ) {
    this.fd = fd;
  }

  /** Starts writing `path`; `op` names the caller in errors. */
  static create(path: string, op: string): AtomicFile {
    // What a writer of this path killed earlier left behind goes first (stale-temporaries.ts).
    removeStaleTemporaries(path);
    // The pid keeps processes apart, the counter two writers of one path in one process.
    const temporary = `${path}.tmp-${process.pid}-${temporaries++}`;
    try {
      return new AtomicFile(path, temporary, openSync(temporary, "w"), op);
    } catch (error) {
      throw cannotWrite(op, path, error);
    }
  }

  get isOpen(): boolean {
    return this.fd !== null;
  }

  /** Appends `bytes` after what was written so far. */
  write(bytes: Uint8Array): void {
    this.writeAt(bytes, this.position);
    this.position += bytes.length;
  }

  /** Overwrites bytes already written (e.g. a header whose counts are known only at the end). */
  writeAt(bytes: Uint8Array, position: number): void {
    const fd = this.openFd();
    try {
      for (let done = 0; done < bytes.length;) {
        done += writeSync(fd, bytes, done, Math.min(bytes.length - done, MAX_WRITE), position + done);
      }
    } catch (error) {
      throw cannotWrite(this.op, this.path, error);
    }
  }

  /** Flushes the file to disk, renames it into place and flushes the rename. */
  commit(): void {
    const fd = this.openFd();
    this.fd = null;
    try {
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(this.temporary, this.path);
    } catch (error) {
      rmSync(this.temporary, { force: true });
      throw cannotWrite(this.op, this.path, error);
    }
    try {
      fsyncDirectory(dirname(this.path));
    } catch (error) {
      // The new file is in place; only its durability across a power loss is in doubt.
      throw cannotWrite(this.op, this.path, error);
    }
  }

  /** Removes the unfinished file; the destination keeps whatever it held. Idempotent. */
  abort(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      closeSync(fd);
    } finally {
      rmSync(this.temporary, { force: true });
    }
  }

  private openFd(): number {
    if (this.fd === null) throw new Error(`${this.op}: ${this.path} is already closed`);
    return this.fd;
  }
}

/**
 * Writes `data` (text as UTF-8) to `path` atomically: `path` holds either its previous content or
 * all of `data`, never a part. `op` names the caller in errors, which also name `path`.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, op: string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = AtomicFile.create(path, op);
  try {
    file.write(bytes);
    file.commit();
  } catch (error) {
    file.abort();
    throw error;
  }
}

/** `value` as indented JSON with a final newline, written atomically. */
export function writeJsonAtomic(path: string, value: unknown, op: string): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, op);
}
