// What the row writers share: a 2-D array streamed a batch of rows at a time straight to a file
// that appears at its path only when complete (AtomicFile), so memory stays bounded whatever the size.
import type { DType, Tensor } from "../torch/index.js";
import type { AtomicFile } from "../util/atomic-file.js";
import { checkRows } from "./checks.js";

export abstract class RowFile {
  private written = 0;

  protected constructor(
    protected readonly file: AtomicFile,
    /** Names the writer in messages, e.g. "NpyRowWriter". */
    private readonly kind: string,
    private readonly cols: number,
    private readonly dtype: DType,
    /** Rows the file may hold, and what they are called in messages; null: no limit. */
    private readonly capacity: { rows: number; of: string } | null,
  ) {}

  /** Rows appended so far. */
  get rowsWritten(): number {
    return this.written;
  }

  /** Appends `rows` ([n, cols], of the writer's dtype), written to the file before returning. */
  append(rows: Tensor): void {
    const op = `${this.kind}.append (${this.file.path})`;
    this.checkOpen(op);
    const n = checkRows(rows, this.cols, this.dtype, op);
    if (this.capacity !== null && this.written + n > this.capacity.rows) {
      throw new RangeError(
        `${op}: ${this.written} + ${n} rows exceed the ${this.capacity.rows} declared for ${this.capacity.of}`,
      );
    }
    this.file.write(rows.toBytes());
    this.written += n;
  }

  /** Discards the unfinished file. Idempotent. */
  abort(): void {
    this.file.abort();
  }

  [Symbol.dispose](): void {
    this.abort();
  }

  protected checkOpen(op: string): void {
    if (!this.file.isOpen) throw new Error(`${op}: the writer is already closed or aborted`);
  }
}
