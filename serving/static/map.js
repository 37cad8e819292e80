// The village map: one SVG circle per village from its latitude and longitude (an equirectangular
// projection with the longitude scaled by cos(latitude), fine for a city or a province), coloured
// by level, with each county's villages enclosed by their convex hull and labelled at the centre.

import { svgElement } from "./charts.js";

const DRAW_ORDER = { blue: 0, yellow: 1, orange: 2, red: 3 };

// Andrew's monotone chain: the convex hull of [x, y] points, counter-clockwise.
export function convexHull(points) {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (sorted.length < 3) return sorted;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (list) => {
    const out = [];
    for (const p of list) {
      while (out.length >= 2 && cross(out[out.length - 2], out[out.length - 1], p) <= 0) out.pop();
      out.push(p);
    }
    out.pop();
    return out;
  };
  return [...half(sorted), ...half([...sorted].reverse())];
}

function escapeAttribute(text) {
  return String(text).replace(/[&"<>]/g, (c) => ({ "&": "&amp;", '"': "&quot;", "<": "&lt;", ">": "&gt;" }[c]));
}

// Draw `villages` (the map route's items) into `container`; onSelect(village) on a click.
// Returns the drawn villages and show(predicate), which dims the villages the filters exclude.
export function drawMap(container, villages, onSelect, onHover) {
  const placed = villages.filter((v) => v.lat !== null && v.lon !== null);
  container.replaceChildren();
  if (!placed.length) return { placed, show() {} };
  const lats = placed.map((v) => v.lat), lons = placed.map((v) => v.lon);
  const latMin = Math.min(...lats), latMax = Math.max(...lats), lonMin = Math.min(...lons), lonMax = Math.max(...lons);
  const stretch = Math.cos(((latMin + latMax) / 2) * Math.PI / 180);
  const spanX = Math.max((lonMax - lonMin) * stretch, 1e-6), spanY = Math.max(latMax - latMin, 1e-6);
  const width = 1000, pad = 20, scale = (width - 2 * pad) / Math.max(spanX, spanY);
  const height = Math.round(spanY * scale + 2 * pad);
  const x = (v) => pad + (v.lon - lonMin) * stretch * scale;
  const y = (v) => pad + (latMax - v.lat) * scale;
  const radius = placed.length > 5000 ? 3 : placed.length > 1000 ? 5 : 8;

  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img" });
  const counties = new Map();
  for (const v of placed) {
    const key = v.county_id ?? "";
    if (!counties.has(key)) counties.set(key, { name: v.county_name ?? v.county_id ?? "", points: [] });
    counties.get(key).points.push([x(v), y(v)]);
  }
  const outlines = svgElement("g", { class: "counties" });
  const labels = svgElement("g", { class: "county-labels" });
  for (const { name, points } of counties.values()) {
    const hull = convexHull(points);
    if (hull.length >= 3) {
      outlines.append(svgElement("polygon", { points: hull.map((p) => p.join(",")).join(" "), class: "county-hull" }));
    }
    const cx = points.reduce((s, p) => s + p[0], 0) / points.length;
    const cy = points.reduce((s, p) => s + p[1], 0) / points.length;
    labels.append(svgElement("text", { x: cx, y: cy, class: "county-label", "text-anchor": "middle" }, name));
  }
  const order = placed.map((_, i) => i).sort((a, b) => DRAW_ORDER[placed[a].level] - DRAW_ORDER[placed[b].level]);
  const dots = svgElement("g", { class: "villages" });
  // One string for thousands of circles: much faster than creating the elements one by one.
  dots.innerHTML = order.map((i) => {
    const v = placed[i];
    return `<circle cx="${x(v).toFixed(1)}" cy="${y(v).toFixed(1)}" r="${radius}" class="village lv-${v.level}" ` +
      `data-index="${i}" data-id="${escapeAttribute(v.id)}"></circle>`;
  }).join("");
  svg.append(outlines, dots, labels);
  dots.addEventListener("click", (event) => {
    const index = event.target.dataset?.index;
    if (index !== undefined) onSelect(placed[Number(index)]);
  });
  dots.addEventListener("mouseover", (event) => {
    const index = event.target.dataset?.index;
    onHover(index === undefined ? null : placed[Number(index)], event);
  });
  dots.addEventListener("mouseleave", () => onHover(null));
  container.append(svg);
  const circles = [...dots.children];
  return {
    placed,
    show(predicate) {
      for (const circle of circles) circle.classList.toggle("dim", !predicate(placed[Number(circle.dataset.index)]));
    },
  };
}
