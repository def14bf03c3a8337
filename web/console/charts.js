/* charts.js: the dashboard's charts, drawn as SVG by the console itself
   (no library, no network): a bar chart and a donut with its legend. */
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...kids) {
  const n = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  for (const c of kids) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return n;
}

const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#65a30d",
  "#db2777", "#4b5563", "#ca8a04", "#0d9488", "#7c3aed"];

/* values: numbers; labels: the same length (every nth shown). */
function barChart(values, labels, title) {
  const W = 600, H = 200, pad = 28, n = values.length || 1;
  const max = Math.max(1, ...values);
  const bw = (W - pad * 2) / n;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H + 20}`, role: "img", "aria-label": title });
  root.append(svg("line", { class: "axis", x1: pad, y1: H, x2: W - pad, y2: H }));
  root.append(svg("text", { x: 2, y: 12 }, String(max)));
  root.append(svg("text", { x: 2, y: H }, "0"));
  values.forEach((v, i) => {
    const h = (v / max) * (H - 20);
    const r = svg("rect", { class: "bar", x: pad + i * bw + 2, y: H - h, width: Math.max(1, bw - 4), height: h, rx: 2 });
    r.append(svg("title", {}, `${labels[i]}: ${v}`));
    root.append(r);
    if (i % Math.ceil(n / 8) === 0) root.append(svg("text", { x: pad + i * bw, y: H + 14 }, labels[i]));
  });
  return root;
}

/* items: [{label, value}]; colors (optional): one per item, else the palette. */
function donutChart(items, title, colors) {
  const color = (i) => (colors && colors[i]) || PALETTE[i % PALETTE.length];
  const wrap = document.createElement("div");
  const total = items.reduce((a, b) => a + b.value, 0);
  const root = svg("svg", { viewBox: "0 0 200 200", role: "img", "aria-label": title });
  const R = 80, r = 50, cx = 100, cy = 100;
  let a0 = -Math.PI / 2;
  if (total === 0) root.append(svg("circle", { cx, cy, r: (R + r) / 2, fill: "none", stroke: "#e3e6eb", "stroke-width": R - r }));
  items.forEach((it, i) => {
    const frac = it.value / total;
    if (!frac) return;
    const a1 = a0 + frac * Math.PI * 2 - (frac === 1 ? 0.0001 : 0);
    const large = a1 - a0 > Math.PI ? 1 : 0;
    const p = (ang, rad) => `${cx + rad * Math.cos(ang)} ${cy + rad * Math.sin(ang)}`;
    const d = `M ${p(a0, R)} A ${R} ${R} 0 ${large} 1 ${p(a1, R)} L ${p(a1, r)} A ${r} ${r} 0 ${large} 0 ${p(a0, r)} Z`;
    const path = svg("path", { d, fill: color(i) });
    path.append(svg("title", {}, `${it.label}: ${it.value}`));
    root.append(path);
    a0 = a1;
  });
  root.append(svg("text", { x: cx, y: cy + 6, "text-anchor": "middle", "font-size": 20, fill: "#1d2430" }, String(total)));
  wrap.append(root);
  const legend = document.createElement("ul");
  legend.className = "legend";
  items.forEach((it, i) => {
    const li = document.createElement("li");
    const sw = document.createElement("i");
    sw.style.background = color(i);
    li.append(sw, document.createTextNode(`${it.label} — ${it.value}`));
    legend.append(li);
  });
  wrap.append(legend);
  return wrap;
}
