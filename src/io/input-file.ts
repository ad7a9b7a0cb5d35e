// A file read at offsets, whose errors name the file and say what was missing.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** readSync moves at most ~2 GiB per call. */
const MAX_READ = 1 << 30;

export class InputFile {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly size: number,
    private readonly op: string,
  ) {}

  /** Opens `path` for reading; `op` names the caller in errors. */
  static open(path: string, op: string): InputFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason = code === "ENOENT" ? "no such file" : (error as Error).message;
      throw new Error(`${op}: cannot open ${path}: ${reason}`, { cause: error });
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new Error(`${op}: ${path} is not a file`);
      return new InputFile(path, fd, stat.size, op);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** An error about this file's contents. */
  error(message: string): Error {
    return new Error(`${this.op}: ${this.path}: ${message}`);
  }

  /** Exactly `length` bytes at `offset`; `what` names them when the file is too short. */
  read(offset: number, length: number, what: string): Uint8Array {
    if (offset + length > this.size) {
      throw this.error(`truncated: ${what} needs ${length} bytes at offset ${offset}, but the file has ${this.size}`);
    }
    const out = new Uint8Array(length);
    for (let done = 0; done < length;) {
      const n = readSync(this.fd, out, done, Math.min(length - done, MAX_READ), offset + done);
      if (n === 0) throw this.error(`the file shrank while being read (at offset ${offset + done})`);
      done += n;
    }
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}
