// `moco serve` end to end on 127.0.0.1 with a small index: its answers equal `moco embed`'s and
// `moco search`'s, added images are found and survive a kill -9, every bad input gets its 4xx (and
// the server still answers after it), the queue refuses work beyond its bound, SIGTERM lets the
// request in flight finish.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { after, before, describe, test } from "node:test";

import sharp from "sharp";

import { readNpy } from "../src/io/index.js";
import { ADDED_LOG, LiveIndex } from "../src/serve/live-index.js";
import { startServer, type RunningServer } from "../src/serve/server.js";
import { liveTensors } from "../src/torch/index.js";
import { exitOf, fashionPngs, makeServeFixture, moco, spawnServe, type ServeFixture } from "./helpers/serve-fixture.js";

const root = mkdtempSync(join(tmpdir(), "moco-serve-"));
let fixture: ServeFixture;
let server: RunningServer;
const BODY_LIMIT = 256 * 1024;

interface Hit {
  row: number;
  id: string;
  score: number;
  label: number | null;
  className: string | null;
}
interface ErrorBody {
  error: { code: string; message: string };
}

async function post(path: string, body: Buffer | string, type = "application/octet-stream", base = server.url) {
  const response = await fetch(`${base}${path}`, { method: "POST", body, headers: { "Content-Type": type } });
  return { status: response.status, headers: response.headers, body: (await response.json()) as unknown };
}

before(async () => {
  fixture = await makeServeFixture(root);
  server = await startServer({ index: fixture.index, port: 0, bodyLimit: BODY_LIMIT });
});
after(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

test("the server binds 127.0.0.1 and answers health, info and OpenAPI", async () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const health = (await (await fetch(`${server.url}/v1/health`)).json()) as { status: string; count: number };
  assert.deepEqual(health, { status: "ok", count: 40 });
  const info = (await (await fetch(`${server.url}/v1/info`)).json()) as {
    encoder: { dim: number; features: string };
    preprocessing: { storedSize: number; inputSize: number; channels: number; modelChannels: number };
    index: { count: number; classNames: string[] | null };
  };
  assert.equal(info.encoder.dim, 32);
  assert.equal(info.encoder.features, "backbone");
  // Folders are decoded as sRGB at 8/7 of the crop; the 1-channel network then gets their luma.
  const { storedSize, inputSize, channels, modelChannels } = info.preprocessing;
  assert.deepEqual([storedSize, inputSize, channels, modelChannels], [32, 28, 3, 1]);
  assert.equal(info.index.count, 40);
  const openapi = (await (await fetch(`${server.url}/v1/openapi.json`)).json()) as { openapi: string; paths: object };
  assert.equal(openapi.openapi, "3.1.0");
  for (const path of ["/v1/embed", "/v1/search", "/v1/index", "/v1/health", "/v1/info", "/v1/map", "/v1/model.onnx"])
    assert.ok(path in openapi.paths, path);
});

test("POST /v1/embed equals moco embed's vector for the same file (raw body and multipart)", async () => {
  const stored = readNpy(join(fixture.index, "embeddings.npy"));
  const rows = stored.toTypedArray<"float32">();
  stored.dispose();
  for (const row of [0, 17, 39]) {
    const bytes = readFileSync(fixture.files[row] as string);
    const raw = await post("/v1/embed", bytes, "image/png");
    assert.equal(raw.status, 200, JSON.stringify(raw.body));
    const form = new FormData();
    form.append("image", new Blob([bytes]), "query.png");
    const multipart = await fetch(`${server.url}/v1/embed`, { method: "POST", body: form });
    assert.equal(multipart.status, 200);
    for (const embedding of [
      (raw.body as { embedding: number[] }).embedding,
      ((await multipart.json()) as { embedding: number[] }).embedding,
    ]) {
      assert.equal(embedding.length, 32);
      const expected = rows.subarray(row * 32, (row + 1) * 32);
      const diff = Math.max(...embedding.map((v, i) => Math.abs(v - (expected[i] as number))));
      assert.ok(diff < 1e-5, `row ${row}: max |difference| ${diff}`);
    }
  }
});

test("POST /v1/search equals moco search; by id too; class names come from the folders", async () => {
  const query = fixture.files[5] as string;
  const out = join(root, "search");
  const searched = moco(["search", "--index", fixture.index, query, "--k", "5", "--out", out]);
  assert.equal(searched.status, 0, searched.stderr);
  const cli = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as {
    results: { hits: { id: string; similarity: number }[] }[];
  };
  const expected = cli.results[0]?.hits ?? [];
  const byImage = await post("/v1/search?k=5", readFileSync(query), "image/png");
  assert.equal(byImage.status, 200);
  const hits = (byImage.body as { hits: Hit[] }).hits;
  assert.deepEqual(
    hits.map((h) => h.id),
    expected.map((h) => h.id),
  );
  hits.forEach((h, i) => assert.ok(Math.abs(h.score - (expected[i]?.similarity ?? 0)) < 1e-5));
  assert.equal(hits[0]?.id, query, "the image itself comes first");
  assert.ok(hits.every((h) => h.className !== null && query.includes("/images/")));
  assert.equal(hits[0]?.className, query.split("/").at(-2));

  const byId = await post("/v1/search", JSON.stringify({ id: query, k: 5 }), "application/json");
  assert.equal(byId.status, 200);
  assert.deepEqual(
    (byId.body as { hits: Hit[] }).hits.map((h) => h.id),
    expected.map((h) => h.id),
  );
});

test("requests arriving together are batched for the encoder", async () => {
  const batched = await startServer({ index: fixture.index, port: 0, windowMs: 100 });
  try {
    const bytes = readFileSync(fixture.files[1] as string);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => post("/v1/search?k=3", bytes, "image/png", batched.url)),
    );
    assert.ok(answers.every((a) => a.status === 200));
    assert.ok(batched.batcher.stats.largestBatch > 1, `largest batch ${batched.batcher.stats.largestBatch}`);
    assert.ok(batched.batcher.stats.batches < 8);
  } finally {
    await batched.close();
  }
});

/** A PNG whose header claims `width`×`height` (its data is one row: it never decodes). */
function pngClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", Buffer.from([0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01])),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

describe("bad input: a 4xx with a JSON message, and the server still answers", () => {
  const png = () => readFileSync(fixture.files[0] as string);
  const cases: {
    name: string;
    send: () => Promise<{ status: number; body: unknown }>;
    status: number;
    code: RegExp;
  }[] = [
    {
      name: "not an image",
      send: () => post("/v1/embed", Buffer.from("hello, this is text"), "image/png"),
      status: 415,
      code: /ERR_NOT_IMAGE/,
    },
    {
      name: "truncated PNG",
      send: () => post("/v1/embed", png().subarray(0, 120), "image/png"),
      status: 400,
      code: /ERR_BAD_IMAGE/,
    },
    {
      name: "truncated JPEG",
      send: async () => {
        const jpeg = await sharp(png()).jpeg().toBuffer();
        return post("/v1/search", jpeg.subarray(0, Math.floor(jpeg.length / 2)), "image/jpeg");
      },
      status: 400,
      code: /ERR_BAD_IMAGE/,
    },
    {
      name: "huge dimensions",
      send: () => post("/v1/embed", pngClaiming(60000, 60000), "image/png"),
      status: 413,
      code: /ERR_TOO_MANY_PIXELS/,
    },
    { name: "wrong content type", send: () => post("/v1/embed", png(), "text/plain"), status: 415, code: /MEDIA_TYPE/ },
    { name: "no image", send: () => post("/v1/embed", Buffer.alloc(0)), status: 400, code: /ERR_NO_IMAGE/ },
    { name: "k = 0", send: () => post("/v1/search?k=0", png(), "image/png"), status: 400, code: /ERR_BAD_K/ },
    {
      name: "k < 0",
      send: () => post("/v1/search", JSON.stringify({ id: fixture.files[0], k: -2 }), "application/json"),
      status: 400,
      code: /ERR_BAD_K/,
    },
    {
      name: "k not a number",
      send: () => post("/v1/search?k=ten", png(), "image/png"),
      status: 400,
      code: /ERR_BAD_K/,
    },
    {
      name: "unknown id",
      send: () => post("/v1/search", JSON.stringify({ id: "no/such/image.png" }), "application/json"),
      status: 404,
      code: /ERR_UNKNOWN_ID/,
    },
    {
      name: "image and id both",
      send: () => post("/v1/search?id=x", png(), "image/png"),
      status: 400,
      code: /ERR_NO_QUERY/,
    },
    {
      name: "oversized body",
      send: () => post("/v1/embed", Buffer.concat([png(), Buffer.alloc(BODY_LIMIT)]), "image/png"),
      status: 413,
      code: /BODY_TOO_LARGE/,
    },
    {
      name: "oversized multipart file",
      send: async () => {
        const form = new FormData();
        form.append("image", new Blob([Buffer.concat([png(), Buffer.alloc(BODY_LIMIT)])]), "big.png");
        const response = await fetch(`${server.url}/v1/embed`, { method: "POST", body: form });
        return { status: response.status, body: (await response.json()) as unknown };
      },
      status: 413,
      code: /FILE_TOO_LARGE/,
    },
    {
      name: "path traversal in static files",
      send: async () => {
        const response = await fetch(`${server.url}/vendor/ort/..%2F..%2F..%2Fpackage.json`);
        return { status: response.status, body: (await response.json()) as unknown };
      },
      status: 404,
      code: /ERR_NOT_FOUND/,
    },
    {
      name: "unknown thumbnail row",
      send: async () => {
        const response = await fetch(`${server.url}/v1/images/99999`);
        return { status: response.status, body: (await response.json()) as unknown };
      },
      status: 404,
      code: /ERR_UNKNOWN_ROW/,
    },
  ];
  for (const { name, send, status, code } of cases) {
    test(name, async () => {
      const answer = await send();
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      const { error } = answer.body as ErrorBody;
      assert.match(error.code, code);
      assert.ok(error.message.length > 10, error.message);
      const health = await fetch(`${server.url}/v1/health`);
      assert.equal(health.status, 200);
    });
  }

  test("the Content-Type is not trusted: a JPEG sent as image/png is read as a JPEG", async () => {
    const jpeg = await sharp(png()).jpeg({ quality: 95 }).toBuffer();
    const answer = await post("/v1/embed", jpeg, "image/png");
    assert.equal(answer.status, 200);
  });
});

test("add then search finds the new image; it is listed on the map and has a thumbnail", async () => {
  const [image] = fixture.extra;
  const added = await post("/v1/index?id=new-image&label=3", image as Buffer, "image/png");
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.deepEqual(added.body, { added: [{ id: "new-image", row: 40 }], count: 41 });
  const found = await post("/v1/search?k=3", image as Buffer, "image/png");
  const hits = (found.body as { hits: Hit[] }).hits;
  assert.equal(hits[0]?.id, "new-image");
  assert.ok(Math.abs((hits[0]?.score ?? 0) - 1) < 1e-5);
  assert.equal(hits[0]?.label, 3);
  const thumbnail = await fetch(`${server.url}/v1/images/40`);
  assert.equal(thumbnail.headers.get("content-type"), "image/png");
  const map = (await (await fetch(`${server.url}/v1/map`)).json()) as {
    points: { row: number; x: number; y: number }[];
  };
  assert.equal(map.points.length, 41);
  assert.ok(map.points.every((p) => Math.abs(p.x) <= 1 && Math.abs(p.y) <= 1));
  assert.ok(new Set(map.points.map((p) => p.x.toFixed(4))).size > 10, "the points are spread out");
});

test("a full inference queue answers 503 with Retry-After, never queues without bound", async () => {
  const small = await startServer({ index: fixture.index, port: 0, queueCapacity: 2, windowMs: 400 });
  try {
    const bytes = readFileSync(fixture.files[2] as string);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => post("/v1/embed", bytes, "image/png", small.url)),
    );
    const refused = answers.filter((a) => a.status === 503);
    assert.ok(refused.length >= 1 && answers.some((a) => a.status === 200), answers.map((a) => a.status).join(","));
    for (const answer of refused) {
      assert.equal(answer.headers.get("retry-after"), "1");
      assert.equal((answer.body as ErrorBody).error.code, "ERR_BUSY");
    }
    assert.equal((await post("/v1/embed", bytes, "image/png", small.url)).status, 200, "it recovers");
  } finally {
    await small.close();
  }
});

test("an access token is required off loopback, and enforced when given", async () => {
  await assert.rejects(
    startServer({ index: fixture.index, host: "0.0.0.0", port: 0 }),
    /ERR_TOKEN|needs an access token/,
  );
  const token = "0123456789abcdef0123";
  const guarded = await startServer({ index: fixture.index, port: 0, token });
  try {
    assert.equal((await fetch(`${guarded.url}/v1/info`)).status, 401);
    assert.equal(
      (await fetch(`${guarded.url}/v1/info`, { headers: { Authorization: "Bearer wrong-token-wrong-token" } })).status,
      401,
    );
    assert.equal(
      (await fetch(`${guarded.url}/v1/info`, { headers: { Authorization: `Bearer ${token}` } })).status,
      200,
    );
    assert.equal((await fetch(`${guarded.url}/v1/health`)).status, 200);
  } finally {
    await guarded.close();
  }
});

test("the add log: a torn last record is dropped at load, the intact ones kept", async () => {
  const dir = join(root, "torn");
  cpSync(fixture.index, dir, { recursive: true });
  rmSync(join(dir, ADDED_LOG), { force: true }); // the images other tests added
  const live = LiveIndex.open(dir);
  live.add([{ id: "a", label: null, file: null, embedding: new Float32Array(32).fill(0.5) }]);
  live.add([{ id: "b", label: 1, file: null, embedding: new Float32Array(32).fill(-0.5) }]);
  live.dispose();
  const log = join(dir, ADDED_LOG);
  const intact = statSync(log).size;
  appendFileSync(log, readFileSync(log).subarray(0, 30)); // half a record, as a crash mid-write leaves
  const notes: string[] = [];
  const reopened = LiveIndex.open(dir, (line) => notes.push(line));
  try {
    assert.equal(reopened.count, 42);
    assert.deepEqual([reopened.rowOf("a"), reopened.rowOf("b")], [40, 41]);
    assert.equal(reopened.labels[41], 1);
    assert.equal(reopened.vector(41)[0], -0.5);
    assert.ok(
      notes.some((n) => /torn record/.test(n)),
      notes.join("\n"),
    );
    assert.equal(statSync(log).size, intact, "truncated back to the intact records");
  } finally {
    reopened.dispose();
  }
});

test(
  "kill -9 during POST /v1/index: the index loads and holds every image whose request completed",
  { timeout: 240_000 },
  async () => {
    const dir = join(root, "crash");
    cpSync(fixture.index, dir, { recursive: true });
    const images = await fashionPngs(Array.from({ length: 24 }, (_, i) => 200 + i));
    const first = await spawnServe(["--index", dir, "--threads", "1"]);
    const completed: string[] = [];
    try {
      let next = 0;
      let killed = false;
      // Four clients add images one after another until the server dies under them.
      const client = async () => {
        for (;;) {
          const i = next++;
          const id = `crash-${i}`;
          try {
            const response = await fetch(`${first.url}/v1/index?id=${id}`, {
              method: "POST",
              body: images[i % images.length]?.png as Buffer,
              headers: { "Content-Type": "image/png" },
            });
            if (response.status === 201) completed.push(id);
            else assert.fail(`status ${response.status}`);
          } catch (error) {
            if (killed) return;
            throw error;
          }
          if (completed.length >= 12 && !killed) {
            killed = true;
            first.child.kill("SIGKILL");
          }
        }
      };
      await Promise.all([client(), client(), client(), client()]);
      await exitOf(first.child);
      assert.equal(first.child.signalCode, "SIGKILL");
      assert.ok(completed.length >= 12);
    } finally {
      // A failed assertion must not leave the server running (it would keep this test process alive).
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
    }

    const second = await spawnServe(["--index", dir, "--threads", "1"]);
    try {
      const health = (await (await fetch(`${second.url}/v1/health`)).json()) as { count: number };
      assert.ok(health.count >= 40 + completed.length, `${health.count} rows, ${completed.length} adds completed`);
      for (const id of completed) {
        const answer = await post("/v1/search", JSON.stringify({ id, k: 1 }), "application/json", second.url);
        assert.equal(answer.status, 200, `${id}: ${JSON.stringify(answer.body)}`);
        assert.equal((answer.body as { hits: Hit[] }).hits[0]?.score.toFixed(4), "1.0000");
      }
    } finally {
      second.child.kill("SIGTERM");
      await exitOf(second.child);
    }
  },
);

test("SIGTERM finishes the request in flight, then exits 0", { timeout: 180_000 }, async () => {
  const served = await spawnServe(["--index", fixture.index, "--batch-window", "1500", "--threads", "1"]);
  after(() => {
    if (served.child.exitCode === null && served.child.signalCode === null) served.child.kill("SIGKILL");
  });
  const pending = post("/v1/embed", readFileSync(fixture.files[3] as string), "image/png", served.url);
  await new Promise((resolve) => setTimeout(resolve, 300));
  served.child.kill("SIGTERM");
  const exited = exitOf(served.child);
  const answer = await pending;
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal((answer.body as { embedding: number[] }).embedding.length, 32);
  assert.equal(await exited, 0, served.stderr());
  assert.match(served.stderr(), /SIGTERM: finishing the requests in flight/);
});

test("no tensor leaks across requests", async () => {
  const bytes = readFileSync(fixture.files[4] as string);
  await post("/v1/search?k=2", bytes, "image/png");
  const before = liveTensors();
  for (let i = 0; i < 5; i += 1) assert.equal((await post("/v1/search?k=2", bytes, "image/png")).status, 200);
  assert.equal(liveTensors(), before);
  assert.ok(existsSync(join(fixture.index, ADDED_LOG)));
});
