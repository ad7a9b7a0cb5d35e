// `moco report` as a user meets it: two tiny real runs on a labeled image folder (one with a
// `moco knn` output), one HTML file, opened in headless Chromium from disk: no console error, no
// request leaving the file, every chart with its marks, the map's hover showing an image, a
// screenshot. Bad inputs fail with a message.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { pretrainPlan } from "../src/cli/pretrain-command.js";
import { ReportInputError, readRuns, writeRunReport } from "../src/report/index.js";
import { networkRequests, openLocalPage } from "./helpers/browser.js";
import { writeFashionPngs } from "./helpers/fashion-folder.js";

const root = mkdtempSync(join(tmpdir(), "moco-report-"));
after(() => rmSync(root, { recursive: true, force: true }));
const folder = join(root, "images");
const runA = join(root, "run-a");
const runB = join(root, "run-b");
const CLASSES: readonly [number, string][] = [
  [1, "trouser"],
  [7, "sneaker"],
  [8, "bag"],
];
const TEST_PER_CLASS = 12;

function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 180_000 });
}

before(async () => {
  await writeFashionPngs(CLASSES, 32 + TEST_PER_CLASS, (name, j) => join(folder, j < 32 ? "train" : "test", name));
  const common = ["--width", "4", "--batch-size", "32", "--bn-splits", "2", "--moco-k", "64", "--moco-dim", "16"];
  const tiny = [...common, "--image-size", "28", "--epochs", "2", "--knn-every", "1", "--threads", "1"];
  // Run A writes its own report at the end (the default); run B was asked not to.
  for (const [out, lr, report] of [
    [runA, "0.03", "--report"],
    [runB, "0.1", "--no-report"],
  ] as const) {
    const result = moco(["pretrain", folder, "--out", out, "--lr", lr, report, ...tiny]);
    assert.equal(result.status, 0, result.stderr);
  }
  const knn = moco([
    "knn",
    "--pretrained",
    join(runA, "checkpoint.pth.tar"),
    "--out",
    join(root, "a-knn"),
    "--threads",
    "1",
  ]);
  assert.equal(knn.status, 0, knn.stderr);
});

test("moco pretrain writes the run's report at the end unless --no-report", () => {
  const page = readFileSync(join(runA, "report.html"), "utf8");
  assert.match(page, /<svg/, "the report has its charts");
  assert.ok(!existsSync(join(runB, "report.html")), "--no-report wrote a report");
  assert.equal(pretrainPlan([]).config.report, true, "the default");
});

test("moco report: one self-contained page of two runs that Chromium renders with every chart's marks", async () => {
  const out = join(root, "report", "runs.html");
  const result = moco(["report", runA, join(root, "a-knn"), runB, "--out", out, "--sample", "100"]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /wrote .*runs\.html \(2 run\(s\), \d+ charts/);
  const html = readFileSync(out, "utf8");
  assert.doesNotMatch(html, /(src|href)="(https?:|\/\/|[^"#d][^"]*\.(png|js|css))/, "nothing refers outside the file");

  // Moved elsewhere, it still shows everything: nothing it needs lies beside it.
  const moved = join(root, "elsewhere", "copy.html");
  mkdirSync(join(root, "elsewhere"));
  copyFileSync(out, moved);
  const opened = await openLocalPage(moved);
  try {
    const { page } = opened;
    const count = (selector: string) => page.locator(selector).count();
    // Training: loss, pretext top-1, lr and images/s, one line per run in each.
    assert.equal(
      await count("svg .mark-line.role-mark path"),
      4 * 2 + 2 * 2,
      "4 step charts × 2 runs + the kNN lines against epochs and against wall time",
    );
    // kNN, in each of its two charts: points per run (step 0 and each of 2 epochs) and two baseline
    // rules per run; the wall-time chart places them by the records' times, so it has them all too.
    assert.equal(await count("svg .mark-rule.role-mark line"), 2 * 4);
    assert.equal(await count("svg .mark-symbol.role-mark path:not([aria-label^='#'])"), 2 * 6);
    // Per class: 3 bars, and the 3×3 confusion matrix of run A's kNN.
    assert.equal(await count("svg .mark-rect.role-mark path"), 3 + 9);
    assert.equal(await count("svg .mark-text.role-mark text"), 9);
    // Maps: every held-out image (36) of each run, with its hover reference.
    assert.equal(await count("svg .mark-symbol.role-mark path[aria-label^='#']"), 2 * 3 * TEST_PER_CLASS);
    // Neighbour grids: 8 queries × (1 + 8) images per run, all inline, with class names.
    assert.equal(await count(".grid img"), 2 * 8 * 9);
    const sources = await page
      .locator("img")
      .evaluateAll((imgs) => imgs.map((i) => (i as unknown as { src: string }).src));
    assert.ok(sources.filter((s) => s !== "").every((s) => s.startsWith("data:image/png;base64,")));
    const loaded = await page
      .locator(".grid img")
      .evaluateAll((imgs) => imgs.every((i) => (i as unknown as { naturalWidth: number }).naturalWidth > 0));
    assert.ok(loaded, "every thumbnail decodes");
    const captions = await page.locator(".grid figcaption").allTextContents();
    assert.ok(
      captions.some((c) => c.includes("sneaker")),
      "class names under the neighbours",
    );
    assert.match(await page.locator("body").innerText(), /Precision@8/);
    const firstRow = await page.locator("table.runs tbody tr").first().locator("td").allInnerTexts();
    assert.deepEqual(
      firstRow.slice(0, 4),
      ["run-a", "resnet18, width 4, folder", "2", "6"],
      "2 epochs of 3 steps (96 images, batch 32)",
    );

    // Hover a map point: its image and class appear.
    const point = page.locator("svg .mark-symbol.role-mark path[aria-label='#5']").first();
    await point.hover({ force: true });
    const tip = page.locator(".map .tip").first();
    assert.equal(await tip.isVisible(), true);
    assert.match((await tip.locator("img").getAttribute("src")) ?? "", /^data:image\/png;base64,/);
    assert.match(await tip.innerText(), /trouser|sneaker|bag/);

    const shot = join(root, "report.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, "a screenshot of the page");
    assert.deepEqual(opened.errors, [], "no console error");
    assert.deepEqual(networkRequests(opened.requests), [], "no network request");
  } finally {
    await opened.close();
  }
});

test("writeRunReport without embeddings, a lincls folder inside the run, clear errors for what is not a run", async () => {
  const out = join(root, "light.html");
  const report = await writeRunReport([runB], { out, embedding: false, title: "light" });
  assert.equal(report.runs.length, 1);
  assert.equal(report.charts, 6, "four step charts and the kNN charts against epochs and wall time");
  assert.ok(existsSync(out));
  assert.doesNotMatch(readFileSync(out, "utf8"), /data:image\/png/, "no map, no thumbnails");

  // A lincls output (its files as moco lincls writes them, per-class fields as moco knn's) in the run.
  const lincls = join(runB, "lincls");
  mkdirSync(lincls);
  writeFileSync(
    join(lincls, "config.json"),
    JSON.stringify({ pretrained: join(runB, "checkpoint.pth.tar"), epochs: 2 }),
  );
  const epoch = (n: number, valTop1: number) =>
    JSON.stringify({
      type: "epoch",
      epoch: n,
      lr: 30,
      loss: 1 / n,
      trainTop1: 50,
      valTop1,
      valTop5: 100,
      bestTop1: valTop1,
      seconds: n,
    });
  writeFileSync(join(lincls, "metrics.jsonl"), `${epoch(1, 50)}\n${epoch(2, 62.5)}\n`);
  writeFileSync(
    join(lincls, "summary.json"),
    JSON.stringify({
      top1: 62.5,
      perClass: [
        { name: "bag", count: 4, correct: 3, accuracy: 75 },
        { name: "sneaker", count: 4, correct: 2, accuracy: 50 },
      ],
      confusion: [
        [3, 1],
        [2, 2],
      ],
    }),
  );
  const withLincls = await writeRunReport([runB], { out, embedding: false });
  assert.equal(withLincls.charts, 6 + 3, "+ the lincls curve, per class and its confusion matrix");
  assert.equal(withLincls.runs[0]?.lincls[0]?.epochs.length, 2);
  const html = readFileSync(out, "utf8");
  assert.match(html, /Linear evaluation: validation top-1/);
  assert.match(html, /Confusion matrix, linear evaluation \(top-1 62\.50%\)/);
  assert.match(html, /<td>62\.50%<\/td>/, "the run table shows the linear top-1");

  writeFileSync(
    join(lincls, "summary.json"),
    JSON.stringify({ top1: 0.5, perClass: [{ name: "bag" }], confusion: [[1, 2]] }),
  );
  await assert.rejects(writeRunReport([runB], { out, embedding: false }), /perClass and confusion do not agree/);
  rmSync(lincls, { recursive: true });

  // Its data gone (a run folder copied elsewhere): the curves remain, the page says why there is no map.
  const moved = join(root, "run-moved");
  mkdirSync(moved);
  for (const file of ["metrics.jsonl", "summary.json", "checkpoint.pth.tar"])
    copyFileSync(join(runB, file), join(moved, file));
  const config = JSON.parse(readFileSync(join(runB, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(moved, "config.json"), JSON.stringify({ ...config, data: join(root, "gone") }));
  const logged: string[] = [];
  const degraded = await writeRunReport([moved], { out, sample: 10, log: (line) => logged.push(line) });
  assert.equal(degraded.charts, 6);
  assert.match(readFileSync(out, "utf8"), /class="note unavailable">run-moved: no embedding map: .*gone/);
  assert.ok(logged.some((line) => line.includes("no embedding map")));

  // A resumed run: the pause before its resume record is not part of its wall time.
  const paused = join(root, "run-paused");
  mkdirSync(paused);
  copyFileSync(join(runA, "config.json"), join(paused, "config.json"));
  const lines = readFileSync(join(runA, "metrics.jsonl"), "utf8").trim().split("\n");
  const cut = lines.findIndex((line) => (JSON.parse(line) as { type: string; epoch: number }).type === "epoch");
  const hour = 3_600_000;
  const later = (line: string) => {
    const record = JSON.parse(line) as { time: string };
    return JSON.stringify({ ...record, time: new Date(Date.parse(record.time) + hour).toISOString() });
  };
  const last = JSON.parse(lines[cut] as string) as { epoch: number; step: number; time: string };
  const resume = {
    type: "resume",
    epoch: last.epoch,
    step: last.step,
    time: new Date(Date.parse(last.time) + hour).toISOString(),
  };
  writeFileSync(
    join(paused, "metrics.jsonl"),
    [...lines.slice(0, cut + 1), JSON.stringify(resume), ...lines.slice(cut + 1).map(later)].join("\n") + "\n",
  );
  const [original, resumed] = readRuns([runA, paused]);
  assert.ok(original !== undefined && resumed !== undefined);
  assert.ok(
    original.knn.some((p) => p.epoch > last.epoch),
    "kNN points after the pause",
  );
  assert.deepEqual(
    resumed.knn.map((p) => p.minutes?.toFixed(6)),
    original.knn.map((p) => p.minutes?.toFixed(6)),
    "the same minutes as the run without the pause",
  );

  assert.throws(() => readRuns([folder]), ReportInputError);
  assert.throws(() => readRuns([join(root, "a-knn")]), /evaluation outputs follow the run they belong to/);
  assert.throws(() => readRuns([join(root, "missing")]), /no such file or folder/);
  assert.throws(() => readRuns([runA, folder]), /not a moco knn or moco lincls output folder/);
  const bad = moco(["report", "--out", join(root, "x.html")]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /at least one run folder/);
});
