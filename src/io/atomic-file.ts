// A file written beside its destination and renamed over it only when complete, so that a crash
// or an error never leaves a half-written file at the destination.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

/** writeSync moves at most ~2 GiB per call. */
const MAX_WRITE = 1 << 30;

let temporaries = 0;

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
    // The counter keeps two writers of one path in one process apart.
    const temporary = `${path}.tmp-${process.pid}-${temporaries++}`;
    try {
      return new AtomicFile(path, temporary, openSync(temporary, "w"), op);
    } catch (error) {
      throw new Error(`${op}: cannot write ${path}: ${(error as Error).message}`, { cause: error });
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
      throw new Error(`${this.op}: cannot write ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Flushes the file to disk and renames it into place. */
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
      throw new Error(`${this.op}: cannot write ${this.path}: ${(error as Error).message}`, { cause: error });
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
