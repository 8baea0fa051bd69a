// The dashboard's chart in plain SVG: one queue's samples over the last hours, the number
// waiting (left scale) and the service level in percent (right scale). No library.

import { clockTime } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 240;
const PAD = { left: 44, right: 48, top: 14, bottom: 30 };

function element(name, attributes = {}, text = "") {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
}

/**
 * Draw `samples` (oldest first) of the hours ending at `endMs` into `svg`, keeping its <title>
 * and <desc> (the desc is rewritten as a summary for screen readers).
 */
export function drawChart(svg, samples, { endMs, hours }) {
  for (const node of [...svg.childNodes]) {
    if (!(node instanceof SVGTitleElement || node instanceof SVGDescElement)) node.remove();
  }
  const desc = svg.querySelector("desc");
  const startMs = endMs - hours * 3600_000;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (ms) => PAD.left + ((ms - startMs) / (endMs - startMs)) * plotW;
  const maxWaiting = Math.max(4, ...samples.map((s) => s.waiting));
  const yWaiting = (n) => PAD.top + plotH - (n / maxWaiting) * plotH;
  const yLevel = (share) => PAD.top + plotH - share * plotH;

  const axes = element("g", { class: "chart-axes" });
  for (const step of [0, 0.5, 1]) {
    const y = PAD.top + plotH - step * plotH;
    axes.append(element("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: "chart-grid" }));
    axes.append(
      element("text", { x: PAD.left - 6, y: y + 4, "text-anchor": "end" }, String(Math.round(step * maxWaiting))),
    );
    axes.append(
      element("text", { x: WIDTH - PAD.right + 6, y: y + 4, "text-anchor": "start" }, `${step * 100}%`),
    );
  }
  const firstHour = Math.ceil(startMs / 3600_000) * 3600_000; // ticks on whole hours (UTC-based)
  for (let ms = firstHour; ms <= endMs; ms += 3600_000) {
    axes.append(
      element("text", { x: x(ms), y: HEIGHT - 8, "text-anchor": "middle" }, clockTime(ms)),
    );
  }
  svg.append(axes);

  const shown = samples.filter((s) => Date.parse(s.at) >= startMs);
  const waiting = shown.map((s) => `${x(Date.parse(s.at)).toFixed(1)},${yWaiting(s.waiting).toFixed(1)}`);
  const withLevel = shown.filter((s) => s.service_level !== null);
  const level = withLevel.map(
    (s) => `${x(Date.parse(s.at)).toFixed(1)},${yLevel(s.service_level).toFixed(1)}`,
  );
  svg.append(element("polyline", { points: waiting.join(" "), class: "chart-waiting", "data-series": "waiting" }));
  svg.append(element("polyline", { points: level.join(" "), class: "chart-level", "data-series": "service_level" }));
  const dots = element("g", { class: "chart-dots" });
  for (const s of shown) {
    dots.append(
      element("circle", {
        cx: x(Date.parse(s.at)).toFixed(1),
        cy: yWaiting(s.waiting).toFixed(1),
        r: 2.5,
        class: "chart-waiting-dot",
        "data-at": s.at,
      }),
    );
  }
  svg.append(dots);

  if (desc) {
    const last = shown.at(-1);
    desc.textContent = last
      ? `${shown.length} samples. At ${clockTime(last.at)}: ${last.waiting} waiting, ` +
        `service level ${last.service_level === null ? "not yet known" : `${Math.round(last.service_level * 100)} %`}.`
      : "No samples yet.";
  }
  svg.dataset.samples = String(shown.length);
}
