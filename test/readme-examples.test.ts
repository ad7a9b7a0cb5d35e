// The README's TypeScript examples are code, so they are tested as code: every ```ts block is
// type-checked under the repository's own tsconfig and then run, with `from "moco-ts"` pointing at
// src/index.ts. Type-checking sees the README's text exactly; the run shrinks the long jobs (the
// dataset sizes and epochs of linear evaluation) by the substitutions listed below, each of which
// must match the README exactly once, so that an edited example cannot silently escape the test.
// The examples run in a scratch folder holding what they read: a checkpoint at the path they name.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MoCo } from "../src/moco/index.js";
import { resnet18, splitBatchNorm } from "../src/nn/index.js";
import { save, type Tensor } from "../src/torch/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(join(tmpdir(), "moco-readme-"));
after(() => rmSync(work, { recursive: true, force: true }));

interface Example {
  /** A phrase that identifies the example in README.md. */
  marker: string;
  /** [README text, what runs instead]: each must occur exactly once in the example. */
  shrink: [string, string][];
  /** What the example's output must contain. */
  prints: RegExp;
}

const EXAMPLES: Example[] = [
  {
    marker: "new MoCo(",
    shrink: [["length: 256", "length: 32"]],
    prints: /^\d+\.\d+\n$/,
  },
  {
    marker: "linearEvaluation({",
    shrink: [
      ['openFashionMnist({ split: "test" })', 'openFashionMnist({ split: "test" }).subset(64)'],
      ['openFashionMnist({ split: "train" })', 'openFashionMnist({ split: "train" }).subset(128)'],
      [
        "{ ...LINCLS_DEFAULTS, precomputeFeatures: true }",
        "{ ...LINCLS_DEFAULTS, precomputeFeatures: true, epochs: 2 }",
      ],
    ],
    prints: /^\d{1,3}(\.\d+)? \[\]\n$/,
  },
  {
    marker: "manualSeed(0)",
    shrink: [],
    prints: /^tensor\(\[\[/,
  },
];

/** Every ```ts block of README.md, in order. */
function readmeBlocks(): string[] {
  const text = readFileSync(join(root, "README.md"), "utf8");
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

/** The import of the package by name, pointed at the source tree. */
function toSource(code: string): string {
  return code.replaceAll('from "moco-ts"', `from ${JSON.stringify(join(root, "src", "index.js"))}`);
}

function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

/** The network the README trains, as an official MoCo checkpoint: what its evaluation example loads. */
function writeCheckpoint(path: string): void {
  const model = new MoCo(
    (dim) => resnet18({ numClasses: dim, width: 16, cifarStem: true, inChannels: 1, normLayer: splitBatchNorm(8) }),
    { dim: 128, K: 4096, m: 0.99, T: 0.2, mlp: true, symmetric: false },
  );
  const stateDict = new Map<string, Tensor>();
  for (const [key, tensor] of model.stateDict()) stateDict.set(`module.${key}`, tensor);
  mkdirSync(dirname(path), { recursive: true });
  save({ epoch: 1, arch: "resnet18", state_dict: stateDict }, path);
  model.dispose();
}

const blocks = readmeBlocks();

describe("README.md's TypeScript examples", () => {
  before(() => {
    blocks.forEach((code, i) => writeFileSync(join(work, `example-${i}.mts`), toSource(code)));
    // The repository's compiler options; .mts files are ES modules, so top-level await works.
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.json"),
        compilerOptions: { noEmit: true, rootDir: "/", typeRoots: [join(root, "node_modules", "@types")] },
        include: ["example-*.mts"],
      }),
    );
    writeCheckpoint(join(work, "runs", "fashion-mnist", "checkpoint.pth.tar"));
  });

  test("each example is one this test knows how to run", () => {
    assert.equal(blocks.length, EXAMPLES.length, "a ```ts block was added or removed: list it in EXAMPLES");
    for (const example of EXAMPLES) {
      assert.equal(blocks.filter((code) => code.includes(example.marker)).length, 1, example.marker);
    }
  });

  test("every example type-checks under the repository's tsconfig", () => {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    const run = spawnSync(process.execPath, [tsc, "-p", join(work, "tsconfig.json")], { encoding: "utf8" });
    assert.equal(run.status, 0, `tsc reports:\n${run.stdout}${run.stderr}`);
  });

  for (const example of EXAMPLES) {
    test(`the example with ${example.marker} runs`, () => {
      let code = blocks.find((block) => block.includes(example.marker));
      assert.ok(code !== undefined, `no example with ${example.marker}`);
      for (const [from, to] of example.shrink) {
        assert.equal(occurrences(code, from), 1, `README example with ${example.marker}: ${from}`);
        code = code.replace(from, to);
      }
      const file = join(work, `run-${EXAMPLES.indexOf(example)}.mts`);
      writeFileSync(file, toSource(code));
      const run = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), file], {
        cwd: work,
        encoding: "utf8",
        timeout: 300_000,
      });
      assert.equal(run.status, 0, `the example failed:\n${run.stderr}`);
      assert.match(run.stdout, example.prints);
    });
  }

  test("the evaluation example wrote what it says", () => {
    for (const file of ["runs/lincls/checkpoint.pth.tar", "runs/lincls/model_best.pth.tar", "encoder.onnx"]) {
      assert.ok(existsSync(join(work, file)), file);
    }
  });
});
