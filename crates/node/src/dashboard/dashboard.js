// The dashboard page: polls /v1/dashboard and renders it. No framework, no remote assets.
"use strict";

const POLL_MS = 2000;
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#a5d6ff"];
const SVG_NS = "http://www.w3.org/2000/svg";

function short(key) {
  const s = String(key || "");
  return s.length > 14 ? s.slice(0, 6) + "…" + s.slice(-6) : s;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren();
  for (const cells of rows) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.appendChild(c);
    body.appendChild(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell("none");
    td.colSpan = document.querySelectorAll("#" + tableId + " thead th").length;
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

function setText(id, value) {
  document.getElementById(id).textContent = String(value);
}

function renderChart(svg, legend, points) {
  const rounds = points.map((p) => p.round_id);
  const workers = [];
  for (const p of points) for (const k of Object.keys(p.scores || {})) if (!workers.includes(k)) workers.push(k);
  svg.setAttribute("data-rounds", String(rounds.length));
  svg.setAttribute("data-series", String(workers.length));
  const W = 720, H = 240, L = 36, R = 10, T = 10, B = 28;
  const axis = document.createElementNS(SVG_NS, "path");
  axis.setAttribute("d", `M${L},${T} V${H - B} H${W - R}`);
  axis.setAttribute("class", "axis");
  axis.setAttribute("fill", "none");
  svg.appendChild(axis);
  for (const y of [0, 0.5, 1]) {
    const t = document.createElementNS(SVG_NS, "text");
    t.setAttribute("x", "4");
    t.setAttribute("y", String(H - B - y * (H - B - T) + 3));
    t.textContent = y.toFixed(1);
    svg.appendChild(t);
  }
  if (rounds.length === 0) return;
  const x = (i) => L + (rounds.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (rounds.length - 1));
  const y = (v) => H - B - Math.max(0, Math.min(1, v)) * (H - B - T);
  rounds.forEach((r, i) => {
    const t = document.createElementNS(SVG_NS, "text");
    t.setAttribute("x", String(x(i) - 10));
    t.setAttribute("y", String(H - 8));
    t.textContent = "#" + points[i].number;
    svg.appendChild(t);
  });
  workers.forEach((w, k) => {
    const color = COLORS[k % COLORS.length];
    const coords = points.map((p, i) => `${x(i).toFixed(1)},${y(Number((p.scores || {})[w] || 0)).toFixed(1)}`);
    // One round is a point, not a line: draw it as a short mark so it stays visible.
    if (coords.length === 1) {
      const [cx, cy] = coords[0].split(",").map(Number);
      coords.splice(0, 1, `${cx - 8},${cy}`, `${cx + 8},${cy}`);
    }
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", coords.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "2");
    line.setAttribute("data-worker", w);
    svg.appendChild(line);
    const item = document.createElement("span");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = color;
    item.appendChild(sw);
    item.appendChild(document.createTextNode(short(w)));
    legend.appendChild(item);
  });
}

// One chart per round lane: consensus scores of each worker over that lane's recent rounds.
function renderCharts(scores) {
  const host = document.getElementById("charts");
  host.replaceChildren();
  const lanes = [];
  for (const p of scores) if (!lanes.includes(p.lane)) lanes.push(p.lane);
  for (const lane of lanes) {
    const wrap = document.createElement("div");
    wrap.className = "chart-wrap";
    const title = document.createElement("h3");
    title.textContent = lane;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 720 240");
    svg.setAttribute("class", "chart");
    svg.setAttribute("data-lane", lane);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `consensus scores over ${lane} rounds`);
    const legend = document.createElement("div");
    legend.className = "legend";
    wrap.append(title, svg, legend);
    host.appendChild(wrap);
    renderChart(svg, legend, scores.filter((p) => p.lane === lane));
  }
  if (lanes.length === 0) {
    const p = document.createElement("p");
    p.className = "status";
    p.textContent = "no round decided yet";
    host.appendChild(p);
  }
}

function render(d) {
  setText("validators-count", d.validators.length);
  setText("workers-count", d.workers.length);
  setText("validator-stake", d.validators.reduce((s, v) => s + v.stake, 0));
  let jobsTotal = 0;
  for (const lane of Object.keys(d.jobs)) for (const n of Object.values(d.jobs[lane])) jobsTotal += n;
  setText("jobs-total", jobsTotal);
  setText("log-size", d.log.size);
  setText("equivocations-count", d.equivocations.length);
  setText("slashes-count", d.slashes.length);

  fill("rounds", d.rounds.map((r) => {
    const c = d.consensus.find((x) => x.lane === r.lane) || {};
    return [
      cell(r.lane), cell(r.round_id, "key"), cell(r.open ? "open" : "closed", r.open ? "yes" : ""),
      cell(c.round_id, "key"), cell(short(c.winner), "key"),
      cell(c.quorum_met === undefined ? null : (c.quorum_met ? "met" : "not met"), c.quorum_met ? "yes" : "no"),
      cell(c.reporting === undefined ? null : `${c.agreeing} of ${c.reporting}`),
    ];
  }));
  fill("jobs", Object.keys(d.jobs).map((lane) => [cell(lane)].concat(
    ["queued", "assigned", "proven", "approved", "rejected"].map((s) => cell(d.jobs[lane][s] || 0)))));
  fill("validators", d.validators.map((v) => [cell(v.uid), cell(short(v.hotkey), "key"), cell(v.stake), cell(v.voting_stake), cell(v.tier)]));
  fill("workers", d.workers.map((w) => [cell(w.uid), cell(short(w.hotkey), "key"), cell(w.stake), cell(w.tier)]));
  document.getElementById("checkpoint").textContent = d.log.checkpoint || `size ${d.log.size}, no checkpoint yet`;
  const rows = [];
  for (const e of d.equivocations) rows.push([cell("equivocation"), cell(short(e.validator || e.hotkey), "key"), cell(e.run_id || e.subject || e.kind), cell(e.kind || "")]);
  for (const s of d.slashes) rows.push([cell("slash"), cell(short(s.hotkey), "key"), cell(s.job_id), cell(`${s.amount} (${s.reason})`)]);
  fill("slashes", rows);
  fill("listings", d.listings.map((l) => [cell(l.node_id), cell(short(l.provider), "key"), cell(l.listed ? "yes" : "no", l.listed ? "yes" : "no"), cell(l.claimed ? "yes" : "no")]));
  fill("builds", d.builds.map((b) => [cell(short(b.wasm_sha256), "key"), cell(b.status, b.status === "verified" ? "yes" : ""), cell(b.recipe_source)]));
  renderCharts(d.scores);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const r = await fetch("/v1/dashboard", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const d = await r.json();
    render(d);
    status.className = "status";
    status.textContent = `updated ${new Date(d.generated_ms).toLocaleTimeString()}` + (d.ledger_error ? ` — ledger: ${d.ledger_error}` : "");
    document.body.setAttribute("data-generated-ms", String(d.generated_ms));
  } catch (e) {
    status.className = "status bad";
    status.textContent = `cannot reach this coordinator: ${e.message}; retrying`;
  }
}

poll();
setInterval(poll, POLL_MS);
