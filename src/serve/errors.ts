// The errors `moco serve` answers with: each carries the HTTP status it maps to, and becomes a JSON
// body { error: { code, message } } so that a client can branch on `code` and show `message`.
import { MocoError } from "../errors.js";

export class ServeError extends MocoError {
  override name = "ServeError";
  /** The HTTP status this error is answered with (4xx: the request; 503: try again later). */
  readonly status: number;
  /** Seconds after which a retry may succeed (503s); null otherwise. */
  readonly retryAfter: number | null;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(code, message, options);
    this.status = status;
    this.retryAfter = options?.retryAfter ?? null;
  }
}

/** The inference queue is full: answered 503 with Retry-After, never queued without bound. */
export class QueueFullError extends ServeError {
  override name = "QueueFullError";
  constructor(capacity: number) {
    super(503, "ERR_BUSY", `the server is busy (${capacity} images already queued for inference); retry shortly`, {
      retryAfter: 1,
    });
  }
}

/** The server is shutting down and takes no new inference work. */
export class ShuttingDownError extends ServeError {
  override name = "ShuttingDownError";
  constructor() {
    super(503, "ERR_SHUTTING_DOWN", "the server is shutting down", { retryAfter: 5 });
  }
}

/** The append-only log of added images is damaged beyond its last, torn record. */
export class IndexLogError extends MocoError {
  override name = "IndexLogError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_INDEX_LOG", message, options);
  }
}
