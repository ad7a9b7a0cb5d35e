// `moco serve`: an embedding index (made by `moco embed`) and its encoder behind an HTTP API on
// Fastify, with a page that searches it and draws it. See openapi.ts for the routes.
//
// Safe by default: bound to 127.0.0.1; any other address needs an access token. Bodies are limited
// in bytes and images in pixels (read from the header before decoding: decompression bombs are
// refused, and sharp's limitInputPixels backs that up); the format is taken from the magic bytes,
// not the Content-Type. Inference goes through a bounded micro-batching queue (503 + Retry-After when
// full). Static files are a fixed list (the page and onnxruntime-web's own files), never a path from
// the request. close() lets in-flight requests finish.
import { createHash, timingSafeEqual } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";

import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import sharp from "sharp";

import type { ImageDataset } from "../data/dataset.js";
import type { Split } from "../data/fashion-mnist.js";
import { decodeImage } from "../data/image-folder.js";
import { isDatasetName, openDataset } from "../data/registry.js";
import { embed } from "../encoder/embed.js";
import { loadEncoder, type Encoder } from "../encoder/encoder.js";
import { Preprocessor } from "../encoder/preprocess.js";
import { exportOnnx } from "../export/index.js";
import { fromTypedArray, scope } from "../torch/index.js";
import { MicroBatcher } from "./batcher.js";
import { ServeError } from "./errors.js";
import { ADDED_DIR, LiveIndex, type Hit } from "./live-index.js";
import { indexMap, type IndexMap } from "./map.js";
import { openApiDocument } from "./openapi.js";
import { servePage } from "./page.js";
import { IMAGE_EXTENSIONS, sniffImage } from "./sniff.js";
import { writeFileAtomic } from "../util/atomic-file.js";

export interface ServeOptions {
  /** The index folder `moco embed` wrote. */
  index: string;
  /** The encoder for queries (default: the checkpoint the index names). */
  pretrained?: string | null;
  /** Default 127.0.0.1. Anything but a loopback address needs `token`. */
  host?: string;
  /** Default 8080; 0 picks a free port (see `url`). */
  port?: number;
  /** Required as `Authorization: Bearer TOKEN` (or ?token=) on every route but /v1/health. */
  token?: string | null;
  /** Most bytes in a request body (default 10 MiB). */
  bodyLimit?: number;
  /** Most pixels (width × height) an image may declare (default 40 million). */
  maxPixels?: number;
  /** Micro-batching: most images per forward pass (default 32), window in ms (default 5). */
  maxBatch?: number;
  windowMs?: number;
  /** Most images admitted for inference at once (default 256); more are answered 503. */
  queueCapacity?: number;
  /** Largest k a search may ask for (default 1000). */
  maxK?: number;
  /** Most images in one POST /v1/index (default 64). */
  maxAddImages?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  app: FastifyInstance;
  /** http://host:port, with the port actually bound. */
  url: string;
  index: LiveIndex;
  encoder: Encoder;
  batcher: MicroBatcher<InferenceItem, InferenceResult>;
  /** Stops taking requests, finishes those in flight, frees the encoder and the index. */
  close(): Promise<void>;
}

/** One image to embed (decoded, HWC uint8) or one indexed row, and how many neighbours (0: none). */
export interface InferenceItem {
  pixels: Uint8Array | null;
  row: number | null;
  k: number;
}

export interface InferenceResult {
  embedding: Float32Array;
  hits: Hit[] | null;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/** The token to require: the given one, or an error when the address is not loopback and none was given. */
export function accessToken(host: string, token: string | null | undefined): string | null {
  if (token !== null && token !== undefined && token !== "") {
    if (token.length < 16) throw new ServeError(400, "ERR_TOKEN", "the access token must have at least 16 characters");
    return token;
  }
  if (!isLoopback(host))
    throw new ServeError(
      400,
      "ERR_TOKEN",
      `binding to ${host} (not loopback) needs an access token: --token or MOCO_SERVE_TOKEN`,
    );
  return null;
}

/** onnxruntime-web's dist folder and the files of it the page needs (the wasm backend only). */
function ortFiles(): { dir: string; files: Set<string> } {
  const dir = dirname(createRequire(import.meta.url).resolve("onnxruntime-web"));
  const wanted = /^(ort\.wasm\.min\.js|ort-wasm-simd-threaded\.(mjs|wasm))$/;
  return { dir, files: new Set(readdirSync(dir).filter((name) => wanted.test(name))) };
}
const ORT_TYPES: Readonly<Record<string, string>> = {
  js: "text/javascript",
  mjs: "text/javascript",
  wasm: "application/wasm",
};

function bad(code: string, message: string, status = 400): ServeError {
  return new ServeError(status, code, message);
}

/** A request's image and its other fields, from a raw image body, multipart or JSON. */
interface Upload {
  images: { bytes: Buffer; filename: string | null }[];
  fields: Record<string, string>;
}

async function readUpload(request: FastifyRequest, maxImages: number, maxBytes: number): Promise<Upload> {
  const fields: Record<string, string> = {};
  const query = request.query as Record<string, unknown>;
  for (const [key, value] of Object.entries(query)) if (typeof value === "string") fields[key] = value;
  const images: Upload["images"] = [];
  if (request.isMultipart()) {
    const parts = request.parts({ limits: { fileSize: maxBytes, files: maxImages, fields: 16, fieldSize: 4096 } });
    for await (const part of parts) {
      if (part.type === "file") images.push({ bytes: await part.toBuffer(), filename: part.filename || null });
      else if (typeof part.value === "string") fields[part.fieldname] = part.value;
    }
  } else if (Buffer.isBuffer(request.body)) {
    if (request.body.length > 0) images.push({ bytes: request.body, filename: null });
  } else if (typeof request.body === "object" && request.body !== null) {
    for (const [key, value] of Object.entries(request.body as Record<string, unknown>))
      if (typeof value === "string" || typeof value === "number") fields[key] = String(value);
  }
  return { images, fields };
}

function parseK(raw: string | undefined, maxK: number): number {
  if (raw === undefined) return 10;
  const k = Number(raw);
  if (!/^\s*-?\d+\s*$/.test(raw) || !Number.isSafeInteger(k) || k < 1 || k > maxK)
    throw bad("ERR_BAD_K", `k must be an integer from 1 to ${maxK}, got ${JSON.stringify(raw)}`);
  return k;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const token = accessToken(host, options.token);
  const log = options.log ?? (() => undefined);
  const bodyLimit = options.bodyLimit ?? 10 * 1024 * 1024;
  const maxPixels = options.maxPixels ?? 40_000_000;
  const maxK = options.maxK ?? 1000;
  const maxAddImages = options.maxAddImages ?? 64;

  const index = LiveIndex.open(options.index, log);
  const { meta } = index;
  const checkpoint = options.pretrained ?? meta.checkpoint;
  let encoder: Encoder;
  try {
    encoder = loadEncoder(checkpoint, { part: meta.part });
  } catch (error) {
    index.dispose();
    throw error;
  }
  const cleanup: (() => void)[] = [() => encoder.dispose(), () => index.dispose()];
  const failStart = (error: unknown): never => {
    for (const free of cleanup) free();
    throw error;
  };
  if (encoder.dim(meta.features) !== meta.dim)
    failStart(
      new ServeError(
        400,
        "ERR_ENCODER_MISMATCH",
        `${checkpoint}: its ${meta.features} features have dimension ${encoder.dim(meta.features)}, the index ${meta.dim}`,
      ),
    );
  if (meta.channels !== 1 && meta.channels !== 3)
    failStart(new ServeError(400, "ERR_INDEX", `index: unsupported channel count ${meta.channels}`));
  const channels = meta.channels as 1 | 3;
  const size = meta.storedSize;
  // Images added with another encoder than the one that made the index would not be comparable.
  const canAdd = resolve(checkpoint) === resolve(meta.checkpoint);
  const preprocessor = new Preprocessor(encoder, channels, { size: meta.imageSize });
  let dataset: ImageDataset | null = null;
  if (meta.dataset.kind !== "folder" && isDatasetName(meta.dataset.kind)) {
    dataset = await openDataset({
      kind: meta.dataset.kind,
      ...(meta.dataset.root === null ? {} : { root: meta.dataset.root }),
      split: (meta.dataset.split ?? "train") as Split,
    }).catch((error: unknown) => {
      log(`thumbnails and class names unavailable: ${(error as Error).message}`);
      return null;
    });
    if (dataset !== null) cleanup.push(() => dataset?.dispose());
  }
  const classNames = dataset?.classNames ?? null;
  const className = (row: number): string | null => {
    const label = index.labels[row] ?? null;
    if (label === null) return null;
    if (classNames !== null) return classNames[label] ?? null;
    // Folder indexes: labels number the class folders, so the folder is the class's name.
    return row < index.baseCount ? basename(dirname(index.ids[row] as string)) : null;
  };

  const batcher = new MicroBatcher<InferenceItem, InferenceResult>(
    (items) => {
      const dim = index.dim;
      const embeddings = new Float32Array(items.length * dim);
      const withPixels = items.flatMap((item, i) => (item.pixels === null ? [] : [i]));
      if (withPixels.length > 0) {
        const per = size * size * channels;
        const batch = new Uint8Array(withPixels.length * per);
        withPixels.forEach((i, j) => batch.set(items[i]?.pixels as Uint8Array, j * per));
        const out = scope(() =>
          embed(
            encoder,
            fromTypedArray(batch, [withPixels.length, size, size, channels], "uint8").permute(0, 3, 1, 2).contiguous(),
            {
              features: meta.features,
              size: meta.imageSize,
              normalize: true,
              // As the index was embedded (moco embed's --precision), or an old index's float32.
              precision: meta.precision?.dtype === "bfloat16" ? "bf16" : "fp32",
              channelsLast: meta.precision?.channelsLast === true ? "on" : "off",
            },
          ).toTypedArray<"float32">(),
        );
        withPixels.forEach((i, j) => embeddings.set(out.subarray(j * dim, (j + 1) * dim), i * dim));
      }
      items.forEach((item, i) => {
        if (item.row !== null) embeddings.set(index.vector(item.row), i * dim);
      });
      const searching = items.flatMap((item, i) => (item.k > 0 ? [i] : []));
      const hits = new Map<number, Hit[]>();
      if (searching.length > 0) {
        const queries = new Float32Array(searching.length * dim);
        searching.forEach((i, j) => queries.set(embeddings.subarray(i * dim, (i + 1) * dim), j * dim));
        const found = index.search(queries, Math.max(...searching.map((i) => items[i]?.k ?? 0)));
        searching.forEach((i, j) => hits.set(i, (found[j] ?? []).slice(0, items[i]?.k ?? 0)));
      }
      return items.map((_, i) => ({ embedding: embeddings.slice(i * dim, (i + 1) * dim), hits: hits.get(i) ?? null }));
    },
    {
      maxBatch: options.maxBatch ?? 32,
      windowMs: options.windowMs ?? 5,
      capacity: options.queueCapacity ?? 256,
    },
  );

  /** HWC uint8 pixels of an upload, decoded as `moco embed` decodes files; 4xx errors for bad input. */
  const decodeUpload = async (bytes: Buffer): Promise<Uint8Array> => {
    if (sniffImage(bytes) === null)
      throw bad("ERR_NOT_IMAGE", "the body is not a JPEG, PNG or WebP image (judged by its first bytes)", 415);
    let width: number;
    let height: number;
    try {
      const header = await sharp(bytes, { limitInputPixels: maxPixels }).metadata();
      width = header.width ?? 0;
      height = header.height ?? 0;
    } catch (error) {
      const message = (error as Error).message.split("\n")[0] ?? "";
      if (/pixel limit/i.test(message))
        throw bad("ERR_TOO_MANY_PIXELS", `the image declares more than ${maxPixels} pixels`, 413);
      throw bad("ERR_BAD_IMAGE", `cannot read the image: ${message}`);
    }
    if (width * height > maxPixels)
      throw bad("ERR_TOO_MANY_PIXELS", `the image is ${width}×${height}: more than ${maxPixels} pixels`, 413);
    try {
      return await decodeImage(bytes, size, channels, maxPixels);
    } catch (error) {
      throw bad("ERR_BAD_IMAGE", (error as Error).message.replace(/^\(image bytes\): /, ""));
    }
  };

  const hitJson = (hit: Hit, rank: number) => ({
    rank: rank + 1,
    row: hit.row,
    id: index.ids[hit.row] as string,
    score: hit.score,
    label: index.labels[hit.row] ?? null,
    className: className(hit.row),
  });

  let onnx: Uint8Array | null = null;
  let map: { version: number; value: IndexMap } | null = null;
  const inputSize = meta.imageSize ?? size;
  const info = () => ({
    encoder: {
      description: encoder.describe(),
      checkpoint,
      arch: encoder.info.layout.arch,
      features: meta.features,
      dim: meta.dim,
      normalized: true,
    },
    preprocessing: {
      decode: `resize the shorter side to ${size} (bilinear) and keep the centre ${size}×${size}, ${channels === 1 ? "gray" : "sRGB"}`,
      storedSize: size,
      channels,
      imageSize: meta.imageSize,
      inputSize,
      modelChannels: encoder.inChannels,
      mean: preprocessor.stats.mean,
      std: preprocessor.stats.std,
      adapt: preprocessor.note,
    },
    index: {
      dir: options.index,
      count: index.count,
      fromEmbed: index.baseCount,
      added: index.count - index.baseCount,
      dataset: meta.dataset,
      classNames,
      canAdd,
    },
    limits: { bodyLimit, maxPixels, maxK, maxAddImages, queueCapacity: batcher.options.capacity },
    batching: { ...batcher.options, ...batcher.stats, pending: batcher.pending },
  });

  const ort = ortFiles();
  const app = Fastify({ bodyLimit, logger: false, forceCloseConnections: "idle", return503OnClosing: true });
  await app.register(multipart);
  // JSON (search by id), images and multipart only: any other body is answered 415.
  app.removeContentTypeParser("text/plain");
  // Image bodies arrive as raw bytes; what they are is decided by sniffing, not by this header.
  for (const type of ["application/octet-stream", /^image\/[\w.+-]+$/])
    app.addContentTypeParser(type, { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply: FastifyReply) => {
    if (error instanceof ServeError) {
      if (error.retryAfter !== null) void reply.header("Retry-After", String(error.retryAfter));
      return reply.code(error.status).send({ error: { code: error.code, message: error.message } });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500)
      return reply.code(status).send({ error: { code: error.code ?? "ERR_BAD_REQUEST", message: error.message } });
    log(`internal error: ${error.stack ?? error.message}`);
    return reply.code(500).send({ error: { code: "ERR_INTERNAL", message: `internal error: ${error.message}` } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: "ERR_NOT_FOUND", message: `no route ${request.method} ${request.url}` } }),
  );
  if (token !== null) {
    const expected = Buffer.from(token);
    app.addHook("onRequest", async (request) => {
      // The page and onnxruntime-web's files are public code, not data; the page sends the token itself.
      const path = request.url.split("?")[0] ?? "";
      if (path === "/v1/health" || path === "/" || path.startsWith("/vendor/ort/")) return;
      const header = request.headers.authorization ?? "";
      const query = (request.query as Record<string, unknown>)["token"];
      const given = Buffer.from(
        header.startsWith("Bearer ") ? header.slice(7) : typeof query === "string" ? query : "",
      );
      if (given.length !== expected.length || !timingSafeEqual(given, expected))
        throw bad("ERR_UNAUTHORIZED", "an access token is required: Authorization: Bearer TOKEN", 401);
    });
  }
  let closing = false;
  app.addHook("onSend", async (_request, reply) => {
    void reply.header("X-Content-Type-Options", "nosniff");
    // While shutting down, answers close their connection: an idle keep-alive socket would
    // otherwise hold the server open until its timeout.
    if (closing) void reply.header("Connection", "close");
  });

  app.get("/v1/health", async () => ({ status: "ok", count: index.count }));
  app.get("/v1/info", async () => info());
  app.get("/v1/openapi.json", async () => openApiDocument({ maxK, bodyLimit, maxPixels }));

  app.post("/v1/embed", async (request) => {
    const upload = await readUpload(request, 1, bodyLimit);
    const image = upload.images[0];
    if (image === undefined) throw bad("ERR_NO_IMAGE", "send an image: a JPEG, PNG or WebP body, or a multipart file");
    const result = await batcher.submit(async () => ({ pixels: await decodeUpload(image.bytes), row: null, k: 0 }));
    return { dim: index.dim, features: meta.features, normalized: true, embedding: Array.from(result.embedding) };
  });

  app.post("/v1/search", async (request) => {
    const upload = await readUpload(request, 1, bodyLimit);
    const k = parseK(upload.fields["k"], maxK);
    const image = upload.images[0];
    const id = upload.fields["id"];
    if ((image === undefined) === (id === undefined))
      throw bad("ERR_NO_QUERY", "send either an image or the id of an indexed image (not both)");
    let query: { id: string; row: number } | null = null;
    if (id !== undefined) {
      const row = index.rowOf(id);
      if (row === null) throw bad("ERR_UNKNOWN_ID", `no image with id ${JSON.stringify(id)} in the index`, 404);
      query = { id, row };
    }
    const result = await batcher.submit(async () =>
      image === undefined
        ? { pixels: null, row: query?.row ?? null, k }
        : { pixels: await decodeUpload(image.bytes), row: null, k },
    );
    return { k, query, count: index.count, hits: (result.hits ?? []).map(hitJson) };
  });

  app.post("/v1/index", async (request, reply) => {
    if (!canAdd)
      throw bad(
        "ERR_ENCODER_MISMATCH",
        `images can be added only with the index's own encoder (${meta.checkpoint}), not ${checkpoint}`,
        409,
      );
    const upload = await readUpload(request, maxAddImages, bodyLimit);
    if (upload.images.length === 0) throw bad("ERR_NO_IMAGE", "send one or more images to add");
    const id = upload.fields["id"];
    if (id !== undefined && (upload.images.length !== 1 || id.length === 0 || id.length > 512))
      throw bad("ERR_BAD_ID", "id names one image (1 to 512 characters)");
    const rawLabel = upload.fields["label"];
    let label: number | null = null;
    if (rawLabel !== undefined) {
      label = Number(rawLabel);
      const classes = classNames?.length ?? Number.POSITIVE_INFINITY;
      if (!/^\d+$/.test(rawLabel) || label >= classes)
        throw bad(
          "ERR_BAD_LABEL",
          `label must be a class index from 0 to ${classes - 1}, got ${JSON.stringify(rawLabel)}`,
        );
    }
    const embedded = await Promise.all(
      upload.images.map((image) =>
        batcher.submit(async () => ({ pixels: await decodeUpload(image.bytes), row: null, k: 0 })),
      ),
    );
    // The image bytes first (for thumbnails), then the log record that makes the add durable.
    const folder = join(options.index, ADDED_DIR);
    mkdirSync(folder, { recursive: true });
    const entries = upload.images.map((image, i) => {
      const format = sniffImage(image.bytes) ?? "png";
      const file = `${createHash("sha256").update(image.bytes).digest("hex").slice(0, 24)}.${IMAGE_EXTENSIONS[format]}`;
      writeFileAtomic(join(folder, file), image.bytes, "POST /v1/index");
      return {
        id: id ?? `${ADDED_DIR}/${file}`,
        label,
        file,
        embedding: (embedded[i] as InferenceResult).embedding,
      };
    });
    const rows = index.add(entries);
    return reply
      .code(201)
      .send({ added: entries.map((entry, i) => ({ id: entry.id, row: rows[i] })), count: index.count });
  });

  app.get("/v1/map", async (request) => {
    const raw = (request.query as Record<string, unknown>)["points"];
    const points = typeof raw === "string" ? Number(raw) : 2000;
    if (!Number.isSafeInteger(points) || points < 1 || points > 20000)
      throw bad("ERR_BAD_POINTS", "points must be an integer from 1 to 20000");
    if (map === null || map.version !== index.version || map.value.points.length > points)
      map = { version: index.version, value: indexMap(index, points) };
    return {
      ...map.value,
      points: map.value.points.map((p) => ({ ...p, id: index.ids[p.row], className: className(p.row) })),
    };
  });

  app.get("/v1/images/:row", async (request, reply) => {
    const raw = (request.params as Record<string, string>)["row"] ?? "";
    const row = Number(raw);
    if (!/^\d+$/.test(raw) || row >= index.count) throw bad("ERR_UNKNOWN_ROW", `no row ${raw} in the index`, 404);
    let source: Buffer | string;
    const added = index.addedFiles.get(row);
    if (added !== undefined) source = join(options.index, ADDED_DIR, added);
    else if (row < index.baseCount && dataset !== null) {
      const image = await dataset.batch([row]);
      const [, c = 1, h = 0, w = 0] = image.shape;
      const hwc = scope(() => image.permute(0, 2, 3, 1).contiguous().toBytes());
      image.dispose();
      source = await sharp(Buffer.from(hwc), { raw: { width: w, height: h, channels: c as 1 | 3 } })
        .png()
        .toBuffer();
    } else if (row < index.baseCount && meta.dataset.kind === "folder") source = index.ids[row] as string;
    else throw bad("ERR_NO_THUMBNAIL", `no image stored for row ${row}`, 404);
    const png = await sharp(source, { limitInputPixels: maxPixels })
      .resize(96, 96, { fit: "inside", kernel: "nearest" })
      .png()
      .toBuffer()
      .catch((error: unknown) => {
        throw bad("ERR_NO_THUMBNAIL", `row ${row}: ${(error as Error).message.split("\n")[0] ?? ""}`, 404);
      });
    return reply.type("image/png").header("Cache-Control", "max-age=3600").send(png);
  });

  app.get("/v1/model.onnx", async (_request, reply) => {
    onnx ??= exportOnnx(encoder.model, {
      inputShape: [encoder.inChannels, inputSize, inputSize],
      includeHead: meta.features === "head",
      normalizeOutput: true,
    });
    return reply.type("application/octet-stream").send(Buffer.from(onnx));
  });

  app.get("/", async (_request, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .header(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'",
      )
      .send(servePage()),
  );
  app.get("/vendor/ort/:file", async (request, reply) => {
    const file = (request.params as Record<string, string>)["file"] ?? "";
    // Only names listed from onnxruntime-web's dist folder at startup: nothing from the URL reaches the file system.
    if (!ort.files.has(file)) throw bad("ERR_NOT_FOUND", `no file ${JSON.stringify(file)}`, 404);
    const type = ORT_TYPES[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream";
    return reply
      .type(type)
      .header("Cache-Control", "max-age=86400")
      .send(readFileSync(join(ort.dir, file)));
  });

  const address = await app.listen({ host, port: options.port ?? 8080 }).catch(failStart);
  let closed: Promise<void> | null = null;
  return {
    app,
    url: address,
    index,
    encoder,
    batcher,
    close: () =>
      (closed ??= (async () => {
        closing = true;
        await app.close();
        await batcher.close();
        for (const free of cleanup) free();
      })()),
  };
}
