// Issue 12's benchmark: `moco serve` under load. A 60 000-image Fashion-MNIST index (train split,
// Debian's data) behind `moco serve` in its own process; autocannon sends concurrent
// POST /v1/search requests with real images (64 Fashion-MNIST test images as PNGs, k = 10), then
// the same requests one at a time. Concurrent requests are micro-batched through the encoder and
// searched as one matrix product, so requests/s under concurrency over requests/s one at a time is
// what batching buys. Traffic goes only to 127.0.0.1, every run is bounded in requests and in time,
// and the server is stopped at the end. Reported: requests/s, p50/p99 latency, the server's peak
// RSS, errors (must be 0), and the speed-up.
//
// The encoder is a width-16 ResNet-18 (the fashion-mnist preset's network) at random
// initialisation: throughput does not depend on the weights. MOCO_SERVE_BENCH_PRETRAINED=FILE uses
// a trained checkpoint instead. The index is kept in runs/bench/ and reused by later runs.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import sharp from "sharp";

import { openFashionMnist } from "../src/data/fashion-mnist.js";
import { loadEncoder } from "../src/encoder/encoder.js";
import { resnet18 } from "../src/nn/index.js";
import { writeEmbeddingIndex, type IndexMeta } from "../src/search/store.js";
import { manualSeed, save } from "../src/torch/index.js";
import { PEAK_RSS_METRIC, type BenchEntry } from "./framework.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The part of autocannon's API used here (it ships no types). */
interface AutocannonResult {
  latency: { p50: number; p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonInstance extends Promise<AutocannonResult> {
  stop(): void;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  amount: number;
  timeout: number;
  requests: { method: string; path: string; headers: Record<string, string>; body: Buffer }[];
}) => AutocannonInstance;
// Loaded when the entry runs: a dev-only tool that a machine running other entries may lack.
const autocannon = ((...args: Parameters<Autocannon>) =>
  (createRequire(import.meta.url)("autocannon") as Autocannon)(...args)) as Autocannon;

async function buildIndex(dir: string, images: number, threads: number): Promise<IndexMeta> {
  const meta = join(dir, "index.json");
  if (existsSync(meta)) {
    const existing = JSON.parse(readFileSync(meta, "utf8")) as IndexMeta;
    if (existing.count === images && existsSync(existing.checkpoint)) return existing;
  }
  mkdirSync(dir, { recursive: true });
  let checkpoint = process.env["MOCO_SERVE_BENCH_PRETRAINED"];
  if (checkpoint === undefined) {
    checkpoint = join(dir, "resnet18-w16.pth");
    manualSeed(0);
    const model = resnet18({ numClasses: 0, width: 16, cifarStem: true, inChannels: 1 });
    save(model.stateDict(), checkpoint);
    model.dispose();
  }
  const encoder = loadEncoder(checkpoint);
  const full = openFashionMnist({ split: "train" });
  const dataset = images < full.length ? full.subset(images) : full;
  try {
    console.error(`serve-load: embedding ${dataset.length} images into ${dir} (${threads} threads)`);
    return await writeEmbeddingIndex(encoder, dataset, {
      dir,
      features: "backbone",
      batchSize: 256,
      datasetInfo: { kind: "fashion-mnist", name: dataset.name, root: null, split: "train" },
    });
  } finally {
    if (dataset !== full) dataset.dispose();
    full.dispose();
    encoder.dispose();
  }
}

async function queryImages(count: number): Promise<Buffer[]> {
  const test = openFashionMnist({ split: "test" });
  try {
    const out: Buffer[] = [];
    for (let i = 0; i < count; i += 1) {
      const image = test.batch([i]);
      const pixels = Buffer.from(image.toBytes());
      image.dispose();
      out.push(
        await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
          .png()
          .toBuffer(),
      );
    }
    return out;
  } finally {
    test.dispose();
  }
}

/** One bounded autocannon run: `amount` requests at most, and stopped after `seconds` whatever happens. */
async function load(url: string, images: Buffer[], connections: number, amount: number, seconds: number) {
  const run = autocannon({
    url,
    connections,
    amount,
    timeout: 30,
    requests: images.map((body) => ({
      method: "POST",
      path: "/v1/search?k=10",
      headers: { "content-type": "image/png" },
      body,
    })),
  });
  const guard = setTimeout(() => run.stop(), seconds * 1000);
  const started = performance.now();
  try {
    const result = await run;
    // autocannon's duration is coarse (whole seconds in its report); the wall time is the figure.
    return { ...result, duration: (performance.now() - started) / 1000 };
  } finally {
    clearTimeout(guard);
  }
}

/** Answered requests per second over the whole run (autocannon's own average is of 1-s samples). */
function rate(result: AutocannonResult): number {
  const answered = Object.values(result.statusCodeStats).reduce((n, s) => n + Number(s.count), 0);
  return answered / result.duration;
}

function vmHwmMiB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match === null ? Number.NaN : Number(match[1]) / 1024;
}

export const serveLoad: BenchEntry = {
  name: "serve-load",
  description:
    "moco serve: concurrent POST /v1/search (k 10, real images) against a 60 000-image Fashion-MNIST index, vs one at a time",
  rounds: 1,
  metrics: [
    { key: "requests_per_s", label: "search requests/s, 32 connections", unit: "req/s", better: "higher", digits: 1 },
    { key: "p50_ms", label: "latency p50, 32 connections", unit: "ms", better: "lower", digits: 1 },
    { key: "p99_ms", label: "latency p99, 32 connections", unit: "ms", better: "lower", digits: 1 },
    {
      key: "sequential_requests_per_s",
      label: "search requests/s, one at a time",
      unit: "req/s",
      better: "higher",
      digits: 1,
    },
    { key: "sequential_p50_ms", label: "latency p50, one at a time", unit: "ms", better: "lower", digits: 1 },
    { key: "batching_speedup", label: "requests/s batched / one at a time", unit: "×", better: "higher", digits: 2 },
    { key: "errors", label: "errors and non-2xx answers (must be 0)", unit: "", better: "lower", digits: 0 },
    { ...PEAK_RSS_METRIC, label: "server peak resident memory" },
  ],
  async unavailable() {
    const dir = "/usr/share/datasets/fashion-mnist";
    return existsSync(join(dir, "train-images-idx3-ubyte.gz")) ? null : `no Fashion-MNIST at ${dir}`;
  },
  async runOurs({ threads, quick }) {
    const images = quick ? 2000 : 60000;
    const indexDir = join(root, "runs", "bench", `serve-load-index-${images}`);
    const meta = await buildIndex(indexDir, images, threads);
    const queries = await queryImages(64);
    const server = spawn(process.execPath, [
      join(root, "bin", "moco.js"),
      "serve",
      ...["--index", indexDir, "--host", "127.0.0.1", "--port", "0", "--threads", String(threads)],
    ]);
    let stderr = "";
    server.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`moco serve did not start:\n${stderr}`)), 180_000);
        createInterface({ input: server.stdout }).on("line", (line) => {
          const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
          if (match !== null) {
            clearTimeout(timer);
            resolve(match[1] as string);
          }
        });
        server.once("exit", (code) => reject(new Error(`moco serve exited (${code}):\n${stderr}`)));
      });
      await load(url, queries, 8, 64, 60); // warm-up
      const concurrent = await load(url, queries, 32, quick ? 256 : 6000, quick ? 60 : 300);
      const sequential = await load(url, queries, 1, quick ? 64 : 600, quick ? 60 : 300);
      const info = (await (await fetch(`${url}/v1/info`)).json()) as { batching: Record<string, number> };
      const peak = vmHwmMiB(server.pid as number);
      const errors = [concurrent, sequential].reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0);
      return {
        values: {
          requests_per_s: rate(concurrent),
          p50_ms: concurrent.latency.p50,
          p99_ms: concurrent.latency.p99,
          sequential_requests_per_s: rate(sequential),
          sequential_p50_ms: sequential.latency.p50,
          batching_speedup: rate(concurrent) / rate(sequential),
          errors,
          peak_rss_mib: peak,
        },
        details: {
          index_images: meta.count,
          dim: meta.dim,
          encoder: meta.encoder,
          concurrent: { duration_s: concurrent.duration, status: concurrent.statusCodeStats },
          sequential: { duration_s: sequential.duration, status: sequential.statusCodeStats },
          server_batching: info.batching,
        },
      };
    } finally {
      server.kill("SIGTERM");
      if (server.exitCode === null && server.signalCode === null)
        await new Promise((resolve) => server.once("exit", resolve));
    }
  },
};
