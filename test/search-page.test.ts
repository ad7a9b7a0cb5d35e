// `moco search`'s results.html as a user meets it: on a labeled image folder it names the classes,
// marks the hits of the query's class and gives precision@k (checked against results.json and the
// index's labels); its images are inside the page, so a copy moved elsewhere shows them all.
// Opened in headless Chromium: no console error, no request leaving the file, a screenshot.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { readNpy } from "../src/io/index.js";
import { resnet } from "../src/nn/index.js";
import { manualSeed, save } from "../src/torch/index.js";
import { networkRequests, openLocalPage } from "./helpers/browser.js";
import { writeFashionPngs } from "./helpers/fashion-folder.js";

const root = mkdtempSync(join(tmpdir(), "moco-search-page-"));
after(() => rmSync(root, { recursive: true, force: true }));
const folder = join(root, "images");
const CLASSES: readonly [number, string][] = [
  [1, "trouser"],
  [5, "sandal"],
  [8, "bag"],
];
const PER_CLASS = 10;

function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 180_000 });
}

before(async () => {
  // The first image of each class stays out of the index: a query the index has never seen.
  await writeFashionPngs(CLASSES, PER_CLASS + 1, (name, j) =>
    j === 0 ? join(root, "queries", name) : join(folder, name),
  );
  // An untrained encoder is enough to exercise the page (and its neighbours still favour the class).
  manualSeed(0);
  const model = resnet("resnet18", { numClasses: 0, width: 4, cifarStem: true });
  save(model.stateDict(), join(root, "encoder.pth"));
  model.dispose();
  const embedded = moco([
    "embed",
    "--pretrained",
    join(root, "encoder.pth"),
    folder,
    "--image-size",
    "28",
    "--out",
    join(root, "index"),
  ]);
  assert.equal(embedded.status, 0, embedded.stderr);
});

test("moco search: class names, same-class marks and precision@k in a page that carries its images", async () => {
  const out = join(root, "search");
  // One query from the index (its label gives its class), one folder of queries outside it (the
  // folder's name gives the class).
  const ids = JSON.parse(readFileSync(join(root, "index", "ids.json"), "utf8")) as string[];
  const inIndex = ids.find((id) => id.includes(join("images", "sandal")));
  assert.ok(inIndex !== undefined);
  const outside = join(root, "queries", "bag");
  const result = moco(["search", "--index", join(root, "index"), inIndex, outside, "--k", "5", "--out", out]);
  assert.equal(result.status, 0, result.stderr);

  // What the page must say, from results.json and the index's labels.
  const labels = readNpy(join(root, "index", "labels.npy"));
  const labelOf = labels.toArray();
  labels.dispose();
  const names = CLASSES.map(([, name]) => name).sort(); // ImageFolder: sorted folder names
  const { results } = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as {
    results: { query: string; hits: { index: number }[] }[];
  };
  assert.equal(results.length, 2);
  const expected = results.map((r, q) => {
    const queryClass = q === 0 ? "sandal" : "bag";
    const same = r.hits.filter((h) => names[labelOf[h.index] as number] === queryClass).length;
    return { queryClass, same, precision: Math.round((same / r.hits.length) * 100) };
  });

  const page = join(root, "moved", "page.html");
  mkdirSync(join(root, "moved"));
  copyFileSync(join(out, "results.html"), page);
  rmSync(out, { recursive: true }); // nothing beside the page may be needed
  const opened = await openLocalPage(page);
  try {
    const { page: p } = opened;
    const sections = p.locator("section");
    assert.equal(await sections.count(), 2);
    for (const [q, want] of expected.entries()) {
      const section = sections.nth(q);
      assert.equal(await section.locator(".query .cls").innerText(), want.queryClass);
      assert.match(await section.locator(".query .p").innerText(), new RegExp(`precision@5 ${want.precision}%`));
      assert.equal(await section.locator(".hit.same").count(), want.same);
      assert.equal(await section.locator(".hit.other").count(), 5 - want.same);
      const hitClasses = await section.locator(".hit .cls").allInnerTexts();
      assert.equal(hitClasses.length, 5);
      assert.ok(
        hitClasses.every((c) => names.includes(c)),
        hitClasses.join(", "),
      );
    }
    assert.equal(
      await p.locator(".hit.same").first().isVisible(),
      expected.some((e) => e.same > 0),
    );
    const mean = (expected[0]!.same + expected[1]!.same) / 10;
    assert.match(await p.locator(".overall").innerText(), new RegExp(`${(mean * 100).toFixed(1)}%`));
    const images = await p
      .locator("img")
      .evaluateAll((all) =>
        all.map(
          (i) =>
            [(i as unknown as { src: string }).src, (i as unknown as { naturalWidth: number }).naturalWidth] as const,
        ),
      );
    assert.equal(images.length, 2 * 6);
    for (const [src, width] of images) {
      assert.match(src, /^data:image\/png;base64,/);
      assert.ok(width > 0, "the image decodes");
    }
    const shot = join(root, "search.png");
    await p.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 5_000);
    assert.deepEqual(opened.errors, []);
    assert.deepEqual(networkRequests(opened.requests), []);
  } finally {
    await opened.close();
  }
});
