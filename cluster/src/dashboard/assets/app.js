// The Sluice dashboard: reads /ui/api/overview and /ui/api/jobs/<id> once a
// second and draws the job list, the workers, and a job's graph, shards,
// checkpoints and live charts. Savepoint and cancel call the coordinator's
// API with the bearer token derived here from the cluster secret (HMAC-SHA-256
// of "http bearer token"): the secret never leaves the browser.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const POLL_MS = 1000;

// ---- formatting -----------------------------------------------------------

function count(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + " k";
  return String(Math.round(n));
}

function bytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function millis(ms) {
  if (ms === null || ms === undefined) return "–";
  if (Math.abs(ms) >= 172800000) return (ms / 86400000).toFixed(1) + " d";
  if (Math.abs(ms) >= 3600000) return (ms / 3600000).toFixed(1) + " h";
  if (Math.abs(ms) >= 60000) return (ms / 60000).toFixed(1) + " min";
  if (Math.abs(ms) >= 1000) return (ms / 1000).toFixed(2) + " s";
  return ms.toFixed(ms < 10 ? 2 : 0) + " ms";
}

function time(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

function checkpointName(id) {
  // The final checkpoint of a bounded job carries the largest id.
  return id > Number.MAX_SAFE_INTEGER ? "final" : String(id);
}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(headers, rows, id) {
  const head = el("tr", {}, ...headers.map(([label, numeric]) => el("th", numeric ? { class: "num" } : {}, label)));
  const body = rows.map((cells) =>
    el("tr", {}, ...cells.map((cell, i) => el("td", headers[i][1] ? { class: "num" } : {}, cell))));
  return el("table", { id }, el("thead", {}, head), el("tbody", {}, ...body));
}

function stateBadge(state) {
  return el("span", { class: "state " + state }, state);
}

// ---- SHA-256 and HMAC (the bearer token) -----------------------------------

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256(message) {
  const bitLength = message.length * 8;
  const padded = new Uint8Array(((message.length + 9 + 63) >> 6) << 6);
  padded.set(message);
  padded[message.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, k] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    const next = [a, b, c, d, e, f, g, k];
    for (let i = 0; i < 8; i++) h[i] = (h[i] + next[i]) >>> 0;
  }
  const digest = new Uint8Array(32);
  const out = new DataView(digest.buffer);
  for (let i = 0; i < 8; i++) out.setUint32(4 * i, h[i]);
  return digest;
}

function hmacSha256(key, message) {
  if (key.length > 64) key = sha256(key);
  const block = new Uint8Array(64);
  block.set(key);
  const inner = new Uint8Array(64 + message.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = block[i] ^ 0x36;
    outer[i] = block[i] ^ 0x5c;
  }
  inner.set(message, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

// The token the coordinator accepts: as ClusterSecret::http_token.
function bearerToken(secret) {
  const encoder = new TextEncoder();
  const mac = hmacSha256(encoder.encode(secret.trim()), encoder.encode("http bearer token"));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- the job graph ---------------------------------------------------------

const NODE_W = 168;
const NODE_H = 58;
const GAP_X = 56;
const GAP_Y = 18;

// Green when an exchange never waits for credit, red when it waits the whole
// second (Flink's backpressure colours).
function backpressureColour(msPerS) {
  if (msPerS === null || msPerS === undefined) return "#e8eef6";
  const ratio = Math.min(1, msPerS / 1000);
  return `hsl(${Math.round(120 * (1 - ratio))}, 65%, 82%)`;
}

function layers(operators) {
  const byId = new Map(operators.map((o) => [o.id, o]));
  const depth = new Map();
  const depthOf = (o, seen) => {
    if (depth.has(o.id)) return depth.get(o.id);
    if (seen.has(o.id)) return 0;
    seen.add(o.id);
    let d = 0;
    for (const input of o.inputs) {
      const from = byId.get(input);
      if (from) d = Math.max(d, depthOf(from, seen) + 1);
    }
    depth.set(o.id, d);
    return d;
  };
  operators.forEach((o) => depthOf(o, new Set()));
  const columns = [];
  for (const o of operators) {
    const d = depth.get(o.id);
    (columns[d] = columns[d] || []).push(o);
  }
  return columns;
}

function drawGraph(operators, rates) {
  const columns = layers(operators);
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  const width = columns.length * (NODE_W + GAP_X) - GAP_X + 20;
  const height = tallest * (NODE_H + GAP_Y) - GAP_Y + 20;
  const root = svg("svg", { id: "graph", width, height, viewBox: `0 0 ${width} ${height}` });
  const at = new Map();
  columns.forEach((column, x) => {
    const offset = ((tallest - column.length) * (NODE_H + GAP_Y)) / 2;
    column.forEach((o, y) => at.set(o.id, [10 + x * (NODE_W + GAP_X), 10 + offset + y * (NODE_H + GAP_Y)]));
  });
  for (const o of operators) {
    const [x2, y2] = at.get(o.id);
    for (const input of o.inputs) {
      if (!at.has(input)) continue;
      const [x1, y1] = at.get(input);
      const sx = x1 + NODE_W, sy = y1 + NODE_H / 2, ex = x2, ey = y2 + NODE_H / 2;
      const mid = (sx + ex) / 2;
      root.append(svg("path", { class: "edge", d: `M${sx},${sy} C${mid},${sy} ${mid},${ey} ${ex},${ey}` }));
    }
  }
  for (const o of operators) {
    const [x, y] = at.get(o.id);
    const rate = rates.get(o.id);
    const waited = o.backpressured_ms_per_s;
    const group = svg("g", {
      class: "node",
      "data-id": o.id,
      "data-kind": o.kind,
      "data-records-out": o.records_out,
      transform: `translate(${x},${y})`,
    });
    group.append(svg("rect", { width: NODE_W, height: NODE_H, fill: backpressureColour(waited) }));
    group.append(svg("text", { class: "kind", x: 8, y: 17 }, `${o.kind} #${o.id}`));
    group.append(svg("text", { class: "rate", x: 8, y: 34 },
      `${rate === undefined ? "–" : count(rate)} rec/s out`));
    const detail = waited === null || waited === undefined
      ? `${count(o.records_out)} out` + (o.state_entries ? `, ${count(o.state_entries)} state` : "")
      : `backpressured ${waited} ms/s`;
    group.append(svg("text", { class: "detail", x: 8, y: 50 }, detail));
    group.append(svg("title", {}, `${o.kind} #${o.id}: ${o.records_in} in, ${o.records_out} out`));
    root.append(group);
  }
  return root;
}

// ---- charts ----------------------------------------------------------------

function drawChart(id, title, times, values, format) {
  const width = 600, height = 180, left = 56, bottom = 22, top = 24;
  const root = svg("svg", { id, width: "100%", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  const points = times.map((t, i) => [t, values[i]]).filter(([, v]) => v !== null && v !== undefined);
  const latest = points.length ? format(points[points.length - 1][1]) : "–";
  root.append(svg("text", { x: left, y: 15 }, `${title}: `, svg("tspan", { class: "latest" }, latest)));
  root.append(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - 8, y2: height - bottom }));
  root.append(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
  if (points.length < 2) return root;
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const most = Math.max(...points.map(([, v]) => v), 1e-9);
  const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (width - 8 - left);
  const y = (v) => height - bottom - (v / most) * (height - bottom - top);
  root.append(svg("text", { x: 4, y: top + 4 }, format(most)));
  root.append(svg("text", { x: 4, y: height - bottom }, "0"));
  root.append(svg("text", { x: width - 90, y: height - 6 }, `last ${Math.round((t1 - t0) / 1000)} s`));
  root.append(svg("polyline", {
    class: "line",
    points: points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
  }));
  return root;
}

// ---- views -----------------------------------------------------------------

const main = document.getElementById("main");
let timer = null;
let previousOperators = null; // [at, Map(id -> records_out)] of the job shown
let secretTyped = "";

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function updated() {
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function showOverview() {
  const overview = await getJson("/ui/api/overview");
  document.getElementById("mode").textContent = overview.mode === "local" ? "sluice run" : "cluster";
  if (overview.mode === "local" && overview.jobs.length === 1 && location.hash === "") {
    location.hash = "#/jobs/" + overview.jobs[0].id;
    return;
  }
  const jobs = table(
    [["Job"], ["Name"], ["State"], ["Attempt", 1], ["Restarts", 1], ["Shards", 1], ["Records out", 1], ["Out/s", 1]],
    overview.jobs.map((j) => [
      el("a", { href: "#/jobs/" + j.id }, j.id), j.name, stateBadge(j.state), j.attempt, j.restarts,
      j.shards, count(j.records_out), count(j.records_out_per_s),
    ]),
    "jobs");
  const parts = [el("h1", {}, "Jobs"), jobs];
  if (overview.mode === "cluster") {
    parts.push(el("h2", {}, "Workers"), table(
      [["Worker"], ["Data plane"], ["State"], ["Shards", 1], ["Running"]],
      overview.workers.map((w) => [
        w.name, w.data_address, w.alive ? (w.draining ? "draining" : "alive") : "lost", w.shards,
        w.tasks.map((t) => `${t.job} [${t.shards.join(", ")}]`).join("; ") || "–",
      ]),
      "workers"));
  }
  main.replaceChildren(...parts);
  updated();
}

function figure(label, value, id) {
  return el("div", { class: "figure" }, el("div", { class: "value", id }, value), el("div", { class: "label" }, label));
}

function actionsPanel(job) {
  const secret = el("input", { id: "secret", type: "password", placeholder: "cluster secret", autocomplete: "off" });
  secret.value = secretTyped;
  secret.addEventListener("input", () => { secretTyped = secret.value; });
  const result = el("span", { id: "action-result" }, secretTyped ? "" : "Actions need the cluster secret.");
  const act = async (what, path) => {
    result.className = "";
    result.textContent = what === "savepoint" ? "taking a savepoint…" : "cancelling…";
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { Authorization: "Bearer " + bearerToken(secret.value) },
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        result.className = "refused";
        result.textContent = `refused (${response.status}): ${body.error || response.statusText}`;
      } else {
        result.className = "done";
        result.textContent = what === "savepoint" ? `savepoint written: ${body.location}` : "cancelled";
      }
    } catch (e) {
      result.className = "refused";
      result.textContent = "failed: " + e.message;
    }
  };
  const savepoint = el("button", { id: "savepoint" }, "Savepoint");
  savepoint.addEventListener("click", () => act("savepoint", `/jobs/${job.id}/savepoint`));
  const cancel = el("button", { id: "cancel", class: "danger" }, "Cancel job");
  cancel.addEventListener("click", () => act("cancel", `/jobs/${job.id}/cancel`));
  return el("div", { class: "panel actions" }, secret, savepoint, cancel, result);
}

async function showJob(id) {
  const job = await getJson("/ui/api/jobs/" + encodeURIComponent(id));
  const now = Date.now();
  const rates = new Map();
  if (previousOperators && previousOperators.id === job.id && previousOperators.attempt === job.attempt) {
    const seconds = (now - previousOperators.at) / 1000;
    for (const o of job.operators) {
      const before = previousOperators.out.get(o.id);
      if (before !== undefined && seconds > 0) rates.set(o.id, Math.max(0, (o.records_out - before) / seconds));
    }
  }
  previousOperators = { id: job.id, attempt: job.attempt, at: now, out: new Map(job.operators.map((o) => [o.id, o.records_out])) };

  const keepActions = document.getElementById("actions-slot");
  const parts = [
    el("h1", {}, `${job.name} `, el("span", { class: "muted" }, job.id), " ", stateBadge(job.state)),
    el("div", { class: "panel figures" },
      figure("records in", count(job.records_in), "records-in"),
      figure("records out", count(job.records_out), "records-out"),
      figure("attempt", job.attempt),
      figure("restarts", job.restarts),
      figure("last checkpoint", job.last_checkpoint === null ? "–" : checkpointName(job.last_checkpoint))),
  ];
  if (job.error) parts.push(el("div", { class: "panel" }, job.error));
  if (job.actions) {
    parts.push(keepActions && keepActions.dataset.job === job.id ? keepActions : el("div", { id: "actions-slot", "data-job": job.id }, actionsPanel(job)));
  }
  parts.push(
    el("h2", {}, "Graph"),
    el("div", { class: "panel" }, drawGraph(job.operators, rates),
      el("div", { class: "legend" }, "Exchanges are coloured by the time they waited for credit: green none, red the whole second.")),
    el("div", { class: "charts" },
      el("div", { class: "panel" }, drawChart("chart-throughput", "records out/s", job.series.at_ms, job.series.records_out_per_s, count)),
      el("div", { class: "panel" }, drawChart("chart-latency", "sink latency p99", job.series.at_ms, job.series.latency_p99_ms, millis))),
    el("h2", {}, "Shards"),
    table(
      [["Shard", 1], ["Worker"], ["Records in", 1], ["Records out", 1], ["Watermark"], ["Watermark lag", 1], ["Backpressured ms/s", 1]],
      job.shards.map((s) => [s.shard, s.worker || "this process", count(s.records_in), count(s.records_out),
        time(s.watermark), millis(s.watermark_lag_ms), s.backpressured_ms_per_s]),
      "shards"),
    el("h2", {}, "Checkpoints"),
    job.checkpoints.length === 0 ? el("p", { class: "muted" }, "None completed yet (or the job does not checkpoint).") : table(
      [["Checkpoint", 1], ["Completed"], ["Duration", 1], ["Written", 1], ["Full size", 1], ["Sync part", 1], ["Alignment", 1], ["In flight", 1]],
      job.checkpoints.slice().reverse().map((c) => [checkpointName(c.id), time(c.completed_at_ms), millis(c.duration_ms),
        bytes(c.bytes), bytes(c.total_bytes), millis(c.sync_ms), millis(c.alignment_ms), bytes(c.in_flight_bytes)]),
      "checkpoints"),
    el("h2", {}, "State per operator"),
    table(
      [["Operator"], ["Entries", 1], ["Records in", 1], ["Records out", 1]],
      job.operators.filter((o) => o.state_entries > 0 || o.kind !== "exchange").map((o) => [`${o.kind} #${o.id}`,
        count(o.state_entries), count(o.records_in), count(o.records_out)]),
      "operators"));
  main.replaceChildren(...parts);
  updated();
}

async function refresh() {
  clearTimeout(timer);
  const route = location.hash.match(/^#\/jobs\/([^/]+)$/);
  try {
    if (route) {
      await showJob(decodeURIComponent(route[1]));
    } else {
      previousOperators = null;
      await showOverview();
    }
  } catch (e) {
    main.replaceChildren(el("p", { class: "refused" }, "Cannot read the figures: " + e.message));
  }
  timer = setTimeout(refresh, POLL_MS);
}

window.addEventListener("hashchange", refresh);
refresh();
