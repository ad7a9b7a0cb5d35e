// The report as one self-contained HTML file: inline SVG charts, thumbnails as data: URIs, inline
// CSS and a few lines of inline script (the map's hover). Nothing refers outside the file, so it
// opens from disk anywhere, offline, and can be mailed or archived as it is.
import type { EmbeddingViews } from "./embedding.js";
import type { RunRecord } from "./run.js";

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Makes the ids of one inline SVG unique in the page: vega numbers its clip paths and gradients
 * from 1 in every SVG it renders, and several SVGs in one document would share them.
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

export interface ReportSection {
  title: string;
  /** HTML (already escaped where needed). */
  body: string;
}

const pct = (v: unknown): string => (typeof v === "number" && Number.isFinite(v) ? `${v.toFixed(2)}%` : "–");

/** The table of runs: what each is and its headline numbers. */
export function runTable(runs: readonly RunRecord[]): string {
  const rows = runs.map((run) => {
    const c = run.config;
    const knn = (run.summary?.["knn"] ?? {}) as Record<string, unknown>;
    const lincls = run.lincls.map((l) => l.top1).find((v) => v !== null);
    const what = [c["arch"], c["width"] === undefined ? null : `width ${String(c["width"])}`, c["dataset"]]
      .filter((x) => x !== null && x !== undefined)
      .map(String)
      .join(", ");
    const images = run.steps.map((s) => s.imagesPerSec).filter(Number.isFinite);
    // Step records count epochs from 0 (the epoch in progress); summary.json says how many completed.
    const done = run.summary?.["epochsDone"];
    const epochs = typeof done === "number" ? done : run.steps.length === 0 ? 0 : (run.steps.at(-1)?.epoch ?? 0) + 1;
    const speed = images.length === 0 ? "–" : (images.reduce((a, b) => a + b, 0) / images.length).toFixed(0);
    return `<tr><td>${escapeHtml(run.name)}</td><td>${escapeHtml(what)}</td><td>${String(epochs)}</td><td>${run.steps.length}</td><td>${speed}</td><td>${pct(knn["trained"])}</td><td>${pct(knn["random"])}</td><td>${pct(knn["pixels"])}</td><td>${lincls === undefined ? "–" : pct(lincls)}</td><td class="path">${escapeHtml(run.dir)}</td></tr>`;
  });
  return `<table class="runs"><thead><tr><th>run</th><th>network, data</th><th>epochs</th><th>steps</th><th>images/s</th><th>kNN top-1</th><th>random init</th><th>raw pixels</th><th>linear top-1</th><th>folder</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** The neighbour grid: each query row with its nearest neighbours, class names and same-class marks. */
export function neighbourGrid(views: EmbeddingViews): string {
  const label = (id: number) => views.labels[id] ?? null;
  const rows = views.neighbours.map((row) => {
    const query = label(row.query);
    const cells = [
      `<figure class="query"><img src="${views.thumbnails[row.query] ?? ""}" alt="query"><figcaption>query${query === null ? "" : `<br><b>${escapeHtml(query)}</b>`}</figcaption></figure>`,
      ...row.hits.map((hit) => {
        const name = label(hit.id);
        const mark = hit.sameClass === null ? "" : hit.sameClass ? " same" : " other";
        return `<figure class="hit${mark}"><img src="${views.thumbnails[hit.id] ?? ""}" alt="neighbour"><figcaption>${hit.similarity.toFixed(3)}${name === null ? "" : `<br>${escapeHtml(name)}`}</figcaption></figure>`;
      }),
    ];
    return `<div class="row">${cells.join("")}</div>`;
  });
  return `<div class="grid">${rows.join("")}</div>`;
}

/** The data the map's hover needs, as inert JSON (no markup can break out of it). */
export function hoverData(views: EmbeddingViews): string {
  const json = JSON.stringify({ thumbnails: views.thumbnails, labels: views.labels }).replace(/</g, "\\u003c");
  return `<script type="application/json" class="map-data">${json}</script>`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure.chart { margin: 0; }
.runs { border-collapse: collapse; font-size: 13px; } .runs td, .runs th { border: 1px solid #ddd; padding: 3px 6px; text-align: right; }
.runs td:first-child, .runs td.path { text-align: left; } .path { color: #666; font-size: 11px; }
.grid .row { display: flex; gap: 4px; margin-bottom: 6px; }
.grid figure { margin: 0; width: 64px; text-align: center; font-size: 10px; }
.grid img { width: 56px; height: 56px; object-fit: contain; image-rendering: pixelated; background: #eee; border: 3px solid transparent; }
.grid .query img { border-color: #36c; } .grid .same img { border-color: #2a2; } .grid .other img { border-color: #d44; }
.map { position: relative; } .tip { position: fixed; pointer-events: none; background: #fff; border: 1px solid #999; padding: 4px; font-size: 11px; display: none; text-align: center; }
.tip img { width: 72px; height: 72px; object-fit: contain; image-rendering: pixelated; display: block; }
.note { color: #555; }
`;

// Shows the hovered point's thumbnail and class: each circle's aria-label is "#<index>".
const SCRIPT = `
for (const map of document.querySelectorAll(".map")) {
  const data = JSON.parse(map.querySelector(".map-data").textContent);
  const tip = map.querySelector(".tip");
  const img = tip.querySelector("img");
  const caption = tip.querySelector("span");
  map.addEventListener("mousemove", (event) => {
    const mark = event.target.closest("[aria-label^='#']");
    if (mark === null) { tip.style.display = "none"; return; }
    const id = Number(mark.getAttribute("aria-label").slice(1));
    img.src = data.thumbnails[id] || "";
    caption.textContent = data.labels[id] || "";
    tip.style.left = event.clientX + 12 + "px";
    tip.style.top = event.clientY + 12 + "px";
    tip.style.display = "block";
  });
  map.addEventListener("mouseleave", () => { tip.style.display = "none"; });
}
`;

/** A map figure: the SVG, its hover data and tooltip. */
export function mapFigure(svg: string, views: EmbeddingViews): string {
  return `<div class="map">${svg}${hoverData(views)}<div class="tip"><img alt=""><span></span></div></div>`;
}

export function reportPage(title: string, intro: string, sections: readonly ReportSection[]): string {
  const body = sections.map((s) => `<section><h2>${escapeHtml(s.title)}</h2>${s.body}</section>`).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(title)}</h1>${intro}
${body}
<script>${SCRIPT}</script>
</body></html>
`;
}
