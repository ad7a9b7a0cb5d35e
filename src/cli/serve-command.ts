// `moco serve`: the HTTP API and page over an embedding index (src/serve/server.ts does the work).
import { availableParallelism } from "node:os";

import { startServer } from "../serve/server.js";
import { setNumThreads } from "../torch/index.js";
import { UsageError } from "../errors.js";
import { flagHelp, parseCommand, type Flag } from "./flags.js";

const SERVE_FLAGS: readonly Flag[] = [
  { flag: "index", kind: "string", meta: "DIR", help: "an index folder written by moco embed (required)" },
  {
    flag: "pretrained",
    kind: "string",
    meta: "FILE",
    help: "encoder for the queries (default: the index's own checkpoint)",
  },
  { flag: "host", kind: "string", help: "address to bind; anything but loopback needs --token", default: "127.0.0.1" },
  { flag: "port", kind: "int", help: "port; 0 picks a free one (printed)", default: 8080 },
  {
    flag: "token",
    kind: "string",
    help: "access token (or MOCO_SERVE_TOKEN); clients send Authorization: Bearer TOKEN",
  },
  { flag: "body-limit", kind: "int", meta: "BYTES", help: "largest request body", default: 10 * 1024 * 1024 },
  { flag: "max-pixels", kind: "int", help: "largest image, in pixels (decompression bombs)", default: 40_000_000 },
  { flag: "max-batch", kind: "int", help: "most images per forward pass", default: 32 },
  {
    flag: "batch-window",
    kind: "float",
    meta: "MS",
    help: "how long a request waits for others to batch with",
    default: 5,
  },
  { flag: "queue", kind: "int", help: "most images queued for inference; more get 503 + Retry-After", default: 256 },
  { flag: "threads", kind: "int", help: "libtorch threads (default: all cores)" },
];

export const SERVE_HELP = `Usage: moco serve --index DIR [options]

Serves an embedding index (made by moco embed) over HTTP: POST /v1/embed, /v1/search, /v1/index,
GET /v1/health, /v1/info, /v1/openapi.json, and a page at / to search by image and browse the index.
Images added with POST /v1/index are kept in DIR/added.log (append-only, fsync'ed per request).
SIGTERM or Ctrl-C finishes the requests in flight, then exits.

${flagHelp(SERVE_FLAGS)}`;

export async function runServe(argv: string[]): Promise<number> {
  const command = parseCommand(argv, {
    name: "serve",
    flags: SERVE_FLAGS,
    help: SERVE_HELP,
    positionals: { max: 0, what: "no positional arguments" },
  });
  if (command === null) return 0;
  const { flags } = command;
  if (!flags.has("index")) throw new UsageError("--index DIR is required (make one with moco embed)");
  const port = flags.number("port");
  if (port < 0 || port > 65535) throw new UsageError(`--port must be from 0 to 65535, got ${port}`);
  const threads = flags.optionalNumber("threads");
  if (threads !== null && threads < 1) throw new UsageError(`--threads must be >= 1, got ${threads}`);
  setNumThreads(threads ?? availableParallelism());
  const log = (line: string) => console.error(line);
  const server = await startServer({
    index: flags.string("index"),
    pretrained: flags.optionalString("pretrained"),
    host: flags.string("host"),
    port,
    token: flags.optionalString("token") ?? process.env["MOCO_SERVE_TOKEN"] ?? null,
    bodyLimit: flags.number("body-limit"),
    maxPixels: flags.number("max-pixels"),
    maxBatch: flags.number("max-batch"),
    windowMs: flags.number("batch-window"),
    queueCapacity: flags.number("queue"),
    log,
  });
  log(`encoder: ${server.encoder.describe()}`);
  log(`index: ${server.index.count} images (${server.index.count - server.index.baseCount} added)`);
  // The one line a script waits for: the address, with the port actually bound.
  console.log(`listening on ${server.url}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log(`${signal}: finishing the requests in flight`);
      void server.close().then(resolve, (error: unknown) => {
        log(`close: ${(error as Error).message}`);
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return 0;
}
