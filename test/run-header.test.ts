// The run header (issue #16, 3): a run says what it trains on, with what, for how long, before it
// starts; warns about settings that make it meaningless; a --max-steps run reports steps, not
// "after 0 epoch(s)"; --skip-bad-images says how many images it left out.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { ConfigError, resolveConfig, type PretrainConfig } from "../src/train/config.js";
import { openPretrainData } from "../src/train/data.js";
import { pretrain } from "../src/train/pretrain.js";
import { formatHeader, pretrainHeader, type RunHeader } from "../src/train/run-header.js";
import { fashionPngs } from "./helpers/serve-fixture.js";

const root = mkdtempSync(join(tmpdir(), "moco-header-"));
after(() => rmSync(root, { recursive: true, force: true }));

function tiny(name: string, overrides: Partial<PretrainConfig> = {}): PretrainConfig {
  return resolveConfig("fashion-mnist", [
    {
      source: "test",
      values: {
        subset: 128,
        width: 4,
        batchSize: 32,
        bnSplits: 2,
        mocoK: 128,
        mocoDim: 16,
        knnEvery: 0,
        knnBank: 128,
        knnTest: 64,
        threads: 1,
        maxSteps: 3,
        out: join(root, name),
        ...overrides,
      },
    },
  ]);
}

test("a run prints and records its header, warns about K ≥ the images, and reports steps", async () => {
  const lines: string[] = [];
  const config = tiny("header");
  const result = await pretrain(config, { progress: { update() {}, log: (line) => lines.push(line), done() {} } });
  const text = lines.join("\n");
  assert.match(
    text,
    /data: fashion-mnist: 128 of 60,000 images \(a random sample, seed 0: subset\.json\), 10 classes, 1 channel\(s\), 28×28 crops/,
  );
  assert.match(
    text,
    /augmentation: crop 0\.8–1 of the area → 28×28, colour jitter brightness ([\d.]+), contrast \1, saturation \1, hue 0\.1 p 0\.8, grayscale p 0\.2, blur σ 0\.0125–0\.25 px p 0\.5, flip p 0\.5/,
  );
  assert.match(text, /network: resnet18 width 4 \(CIFAR stem\), [\d,]+ parameters/);
  assert.match(text, /MoCo: dim 16, K 128, m 0\.99, T 0\.07, MLP head, BN splits 2/);
  assert.match(text, /batch 32, 4 steps per epoch, 30 epoch\(s\), 3 steps in all/);
  assert.match(text, /running on cpu in (fp32|bf16 autocast)(, channels-last)? \(auto\), 1 thread/);
  assert.match(text, /warning: the queue \(--moco-k 128\) is not smaller than the 128 training images/);
  assert.match(text, /kNN top-1 \(backbone\) after 3 step\(s\)/);
  assert.doesNotMatch(text, /after 0 epoch/);
  const recorded = JSON.parse(readFileSync(join(config.out, "run.json"), "utf8")) as RunHeader;
  assert.deepEqual(recorded, JSON.parse(JSON.stringify(result.header)));
  assert.equal(recorded.data.images, 128);
  assert.equal(recorded.data.available, 60000);
  assert.ok(recorded.network.parameters > 10000);
  assert.ok(text.indexOf("data:") < text.indexOf("kNN top-1"), "the header comes first");
});

test("--color-jitter sets the jitter's brightness, contrast and saturation ranges; 0 leaves them out", async () => {
  for (const [jitter, expected] of [
    [1.2, /colour jitter brightness 1\.2, contrast 1\.2, saturation 1\.2, hue 0\.1 p 0\.8/],
    [0, /crop 0\.8–1 of the area → 28×28, colour jitter hue 0\.1 p 0\.8, grayscale/],
  ] as const) {
    const config = tiny(`jitter-${jitter}`, { colorJitter: jitter });
    const data = await openPretrainData(config);
    try {
      const step = data.augment.steps.find((s) => s.op === "colorJitter");
      assert.deepEqual(step && [step.brightness, step.contrast, step.saturation, step.hue], [
        jitter,
        jitter,
        jitter,
        0.1,
      ]);
      assert.match(
        formatHeader(pretrainHeader(config, data, 1000, { stepsPerEpoch: 4, totalSteps: 80 }, 1)).join("\n"),
        expected,
      );
    } finally {
      data.dispose();
    }
  }
});

test("fewer images than one batch is refused with a hint", async () => {
  await assert.rejects(pretrain(tiny("small", { subset: 16, mocoK: 64 })), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /16 training images .* fewer than one batch \(--batch-size 32\): lower --batch-size/);
    return true;
  });
});

test("--skip-bad-images: the header says how many images were left out", async () => {
  const folder = join(root, "photos", "shoes");
  mkdirSync(folder, { recursive: true });
  for (const [i, { png }] of (await fashionPngs([0, 1, 2, 3])).entries()) writeFileSync(join(folder, `${i}.png`), png);
  writeFileSync(join(folder, "broken.png"), Buffer.from("not a png".repeat(10)));
  const config = resolveConfig("fashion-mnist", [
    {
      source: "test",
      values: { dataset: "folder", data: join(root, "photos"), imageSize: 28, skipBadImages: true, out: root },
    },
  ]);
  const data = await openPretrainData(config);
  try {
    assert.equal(data.skipped, 1);
    const header = pretrainHeader(config, data, 1000, { stepsPerEpoch: 1, totalSteps: 20 }, 1);
    assert.equal(header.data.skipped, 1);
    const text = formatHeader(header).join("\n");
    assert.match(text, /4 images, unlabeled|4 images, 1 classes/);
    assert.match(text, /1 unreadable skipped/);
    assert.match(text, /warning: 1 unreadable image\(s\) left out \(--skip-bad-images\)/);
  } finally {
    data.dispose();
  }
});
