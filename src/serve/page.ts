// The page `moco serve` shows at /: drop or pick an image, see its neighbours with their scores;
// the index drawn on a 2-D map (click a point to search from it). When onnxruntime-web loads (served
// from node_modules, never a CDN), the page also embeds the image itself from /v1/model.onnx, with
// the preprocessing /v1/info describes, and shows how far that is from the server's embedding.
// Everything is in this one document plus /vendor/ort/*: nothing is fetched from elsewhere.
const SCRIPT = String.raw`
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const $ = (id) => document.getElementById(id);
let info = null;
let session = null;
window.moco = { ready: false, last: null, errors: [] };

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { ...headers, ...(init.headers || {}) } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.code + ": " + body.error.message : response.statusText);
  return body;
}

function thumb(row) {
  return "/v1/images/" + row + (token ? "?token=" + encodeURIComponent(token) : "");
}

function showHits(title, hits) {
  $("results-title").textContent = title;
  const list = $("hits");
  list.replaceChildren();
  for (const hit of hits) {
    const item = document.createElement("figure");
    item.className = "hit";
    const img = document.createElement("img");
    img.src = thumb(hit.row);
    img.alt = hit.id;
    const caption = document.createElement("figcaption");
    caption.textContent = hit.score.toFixed(4) + " · " + (hit.className ?? hit.id);
    caption.title = hit.id;
    item.append(img, caption);
    list.append(item);
  }
}

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// The server's preprocessing, in the browser: decode to the stored size (centre square), crop to the
// network's input, adapt channels, normalise. Exact for images already at the stored size.
async function browserInput(file) {
  const p = info.preprocessing;
  const S = p.storedSize;
  if (p.inputSize > S) throw new Error("the network's input is larger than the stored images: not computed in the browser");
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = document.createElement("canvas");
  canvas.width = S;
  canvas.height = S;
  const context = canvas.getContext("2d", { colorSpace: "srgb", willReadFrequently: true });
  const scale = S / Math.min(bitmap.width, bitmap.height);
  const w = bitmap.width * scale;
  const h = bitmap.height * scale;
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, (S - w) / 2, (S - h) / 2, w, h);
  const rgba = context.getImageData(0, 0, S, S).data;
  const size = p.inputSize;
  const offset = roundHalfEven((S - size) / 2);
  const C = p.modelChannels;
  const input = new Float32Array(C * size * size);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const at = ((y + offset) * S + (x + offset)) * 4;
      const stored = p.channels === 1
        ? [Math.round(0.2126 * rgba[at] + 0.7152 * rgba[at + 1] + 0.0722 * rgba[at + 2]) / 255]
        : [rgba[at] / 255, rgba[at + 1] / 255, rgba[at + 2] / 255];
      const values = C === stored.length ? stored
        : C === 3 ? [stored[0], stored[0], stored[0]]
        : [0.2989 * stored[0] + 0.587 * stored[1] + 0.114 * stored[2]];
      for (let c = 0; c < C; c += 1) input[(c * size + y) * size + x] = (values[c] - p.mean[c]) / p.std[c];
    }
  }
  return new ort.Tensor("float32", input, [1, C, size, size]);
}

async function loadModel() {
  if (typeof ort === "undefined") throw new Error("onnxruntime-web did not load");
  ort.env.wasm.wasmPaths = "/vendor/ort/";
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const response = await fetch("/v1/model.onnx", { headers });
  if (!response.ok) throw new Error("model: " + response.status);
  session = await ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()), { executionProviders: ["wasm"] });
  $("browser").textContent = "in-browser encoder ready (onnxruntime-web, wasm)";
}

async function compare(file) {
  if (session === null) return null;
  const output = await session.run({ [session.inputNames[0]]: await browserInput(file) });
  const browser = Array.from(output[session.outputNames[0]].data);
  const server = (await api("/v1/embed", { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } })).embedding;
  let maxAbsDiff = 0;
  for (let i = 0; i < server.length; i += 1) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(browser[i] - server[i]));
  $("compare").textContent = "browser vs server embedding: max |difference| " + maxAbsDiff.toExponential(2) + " over " + server.length + " values";
  return { browser, server, maxAbsDiff };
}

async function searchFile(file) {
  $("status").textContent = "searching…";
  $("query").src = URL.createObjectURL(file);
  try {
    const found = await api("/v1/search?k=" + $("k").value, { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } });
    showHits("Nearest to " + file.name, found.hits);
    $("status").textContent = "";
    let comparison = null;
    try {
      comparison = await compare(file);
    } catch (error) {
      $("compare").textContent = "browser embedding: " + error.message;
    }
    window.moco.last = { hits: found.hits, comparison };
  } catch (error) {
    $("status").textContent = error.message;
    window.moco.last = { error: error.message };
  }
}

async function searchId(id) {
  try {
    const found = await api("/v1/search", { method: "POST", body: JSON.stringify({ id, k: Number($("k").value) }), headers: { "Content-Type": "application/json" } });
    showHits("Nearest to " + id, found.hits);
  } catch (error) {
    $("status").textContent = error.message;
  }
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
let mapPoints = [];

async function drawMap() {
  const map = await api("/v1/map?points=3000");
  mapPoints = map.points;
  const canvas = $("map");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (const point of map.points) {
    const [x, y] = toCanvas(point, canvas);
    context.fillStyle = point.label === null ? "#555" : PALETTE[point.label % PALETTE.length];
    context.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  $("map-caption").textContent = map.points.length + " of " + map.count + " images on their first two principal components (" +
    (100 * (map.explained[0] + map.explained[1])).toFixed(1) + "% of the variance); click a point to search from it";
}

function toCanvas(point, canvas) {
  return [(point.x * 0.95 + 1) * canvas.width / 2, (1 - point.y * 0.95) * canvas.height / 2];
}

$("map").addEventListener("click", (event) => {
  const canvas = $("map");
  const box = canvas.getBoundingClientRect();
  const cx = (event.clientX - box.left) * canvas.width / box.width;
  const cy = (event.clientY - box.top) * canvas.height / box.height;
  let best = null;
  let bestDistance = Infinity;
  for (const point of mapPoints) {
    const [x, y] = toCanvas(point, canvas);
    const d = (x - cx) ** 2 + (y - cy) ** 2;
    if (d < bestDistance) [best, bestDistance] = [point, d];
  }
  if (best !== null) void searchId(best.id);
});

$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) void searchFile(file);
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) void searchFile(file);
});

(async () => {
  try {
    info = await api("/v1/info");
    $("info").textContent = info.encoder.description + " · " + info.encoder.features + " features, dim " + info.encoder.dim +
      " · index of " + info.index.count + " images (" + info.index.dataset.name + ")";
    await drawMap();
  } catch (error) {
    $("status").textContent = error.message;
  }
  try {
    await loadModel();
  } catch (error) {
    $("browser").textContent = "in-browser encoder unavailable: " + error.message;
  }
  window.moco.ready = true;
})();
`;

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #222; }
header p { color: #555; margin: 0.2rem 0; }
main { display: grid; grid-template-columns: minmax(280px, 1fr) 500px; gap: 1.5rem; }
#drop { border: 2px dashed #999; border-radius: 8px; padding: 1.5rem; text-align: center; }
#drop.over { border-color: #1f77b4; background: #eef5fb; }
#query { max-width: 96px; max-height: 96px; image-rendering: pixelated; display: block; margin: 0.5rem auto; }
#hits { display: flex; flex-wrap: wrap; gap: 0.6rem; }
.hit { margin: 0; width: 104px; font-size: 12px; }
.hit img { width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated; background: #f3f3f3; }
.hit figcaption { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#map { width: 480px; height: 480px; border: 1px solid #ddd; cursor: crosshair; }
small { color: #666; }
`;

export function servePage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>moco serve</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>moco serve</h1>
<p id="info">loading…</p>
<p id="browser">loading the in-browser encoder…</p>
</header>
<main>
<section>
<div id="drop">
<p>Drop an image here, or <label>pick one <input id="file" type="file" accept="image/jpeg,image/png,image/webp"></label></p>
<p><label>neighbours <input id="k" type="number" min="1" max="100" value="12"></label></p>
<img id="query" alt="">
</div>
<p id="status"></p>
<h2 id="results-title">Neighbours</h2>
<div id="hits"></div>
<p id="compare"></p>
</section>
<section>
<h2>The index</h2>
<canvas id="map" width="480" height="480"></canvas>
<p><small id="map-caption"></small></p>
</section>
</main>
<script src="/vendor/ort/ort.wasm.min.js"></script>
<script type="module">${SCRIPT}</script>
</body>
</html>
`;
}
