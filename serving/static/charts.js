// Small SVG charts drawn by hand: a signed horizontal bar chart and a line over time.

const NS = "http://www.w3.org/2000/svg";

export function svgElement(name, attributes = {}, text = null) {
  const element = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== null) element.textContent = text;
  return element;
}

// Bars of signed values around a zero axis; rows = [{label, value, title}], format(value) -> text.
export function signedBars(rows, format) {
  const rowHeight = 26, labelWidth = 150, valueWidth = 70, width = 560;
  const plot = width - labelWidth - valueWidth;
  const height = rows.length * rowHeight + 8;
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img" });
  const largest = Math.max(1e-12, ...rows.map((r) => Math.abs(r.value)));
  const hasNegative = rows.some((r) => r.value < 0);
  const zero = labelWidth + (hasNegative ? plot / 2 : 0);
  const scale = (hasNegative ? plot / 2 : plot) / largest;
  rows.forEach((row, k) => {
    const y = 4 + k * rowHeight;
    const length = Math.abs(row.value) * scale;
    const group = svgElement("g", { class: "bar-row" });
    group.append(svgElement("text", { x: labelWidth - 6, y: y + 17, class: "bar-label", "text-anchor": "end" }, row.label));
    const rect = svgElement("rect", {
      x: row.value >= 0 ? zero : zero - length, y: y + 4, width: Math.max(length, 1), height: rowHeight - 8,
      class: row.value >= 0 ? "bar up" : "bar down",
    });
    rect.append(svgElement("title", {}, row.title));
    group.append(rect);
    group.append(svgElement("text", { x: width - 4, y: y + 17, class: "bar-value", "text-anchor": "end" }, format(row.value)));
    svg.append(group);
  });
  svg.append(svgElement("line", { x1: zero, x2: zero, y1: 0, y2: height, class: "axis" }));
  return svg;
}

// A line of points [{x: Date, y: number, level}] with horizontal reference lines [{y, level}].
export function timeLine(points, references, formatY, formatX) {
  const width = 560, height = 180, left = 48, right = 12, top = 10, bottom = 26;
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, class: "line-chart", role: "img" });
  const times = points.map((p) => p.x.getTime());
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const yMax = Math.max(...points.map((p) => p.y), ...references.map((r) => r.y)) * 1.1 || 1;
  const sx = (t) => left + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (width - left - right);
  const sy = (v) => top + (1 - v / yMax) * (height - top - bottom);
  for (const reference of references) {
    svg.append(svgElement("line", { x1: left, x2: width - right, y1: sy(reference.y), y2: sy(reference.y),
      class: `threshold lv-${reference.level}` }));
    svg.append(svgElement("text", { x: left - 4, y: sy(reference.y) + 4, class: "tick", "text-anchor": "end" },
      formatY(reference.y)));
  }
  svg.append(svgElement("line", { x1: left, x2: width - right, y1: sy(0), y2: sy(0), class: "axis" }));
  svg.append(svgElement("polyline", { points: points.map((p) => `${sx(p.x.getTime())},${sy(p.y)}`).join(" "),
    class: "history-line" }));
  for (const p of points) {
    const dot = svgElement("circle", { cx: sx(p.x.getTime()), cy: sy(p.y), r: 4, class: `dot lv-${p.level}` });
    dot.append(svgElement("title", {}, `${formatX(p.x)}: ${formatY(p.y)}`));
    svg.append(dot);
  }
  const ends = points.length > 1 ? [points[0], points[points.length - 1]] : points;
  for (const p of ends) {
    svg.append(svgElement("text", { x: sx(p.x.getTime()), y: height - 6, class: "tick", "text-anchor": "middle" },
      formatX(p.x)));
  }
  return svg;
}
