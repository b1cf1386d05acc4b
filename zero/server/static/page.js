// The translator page: asks the server's own API, draws the LRN token weights. No libraries,
// nothing loaded from elsewhere: the page works offline.
"use strict";

const API = "/translator";
const LOG_RANGE = 1e-3; // the heatmap's log colours span this fraction of the largest weight
// viridis at nine stops (matplotlib's colour map, as the weights mode's PNGs use)
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

let model = null;

function $(id) {
  return document.getElementById(id);
}

async function call(method, path, body) {
  const options = { method, headers: { "Content-Type": "application/json" } };
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(API + path, options);
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    throw new Error(`${path}: HTTP ${response.status}, not JSON`);
  }
  if (!response.ok) throw new Error(data && data.error ? data.error : `HTTP ${response.status}`);
  return data;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function describeModel(info) {
  const millions = (info.parameters / 1e6).toFixed(1);
  const step = info.checkpoint_step === null ? "" : `, checkpoint step ${info.checkpoint_step}`;
  return `${info.cell.toUpperCase()} model, ${millions}M parameters${step}, ` +
    `${info.precision}, ${info.src_lang} \u2192 ${info.tgt_lang}, beam ${info.beam_size}`;
}

async function loadModel() {
  try {
    [model] = await call("GET", "/models");
    $("model").textContent = describeModel(model);
    $("tgt").lang = model.tgt_lang;
    $("src").lang = model.src_lang;
  } catch (e) {
    $("model").textContent = "model description unavailable: " + e.message;
  }
}

function colour(value, vmax) {
  // log scale from vmax * LOG_RANGE (darkest) to vmax (brightest)
  const low = Math.log(vmax * LOG_RANGE);
  const x = Math.min(1, Math.max(0, (Math.log(Math.max(value, 1e-30)) - low) / -Math.log(LOG_RANGE)));
  const pos = x * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(pos));
  const f = pos - i;
  const rgb = VIRIDIS[i].map((c, j) => Math.round(c + f * (VIRIDIS[i + 1][j] - c)));
  return `rgb(${rgb.join(",")})`;
}

function drawBars(container, tokens, unk, weights) {
  const bars = document.createElement("div");
  bars.className = "bars";
  const vmax = Math.max(...weights) || 1;
  tokens.forEach((token, k) => {
    const row = document.createElement("div");
    row.className = "bar-row";
    const label = document.createElement("span");
    label.className = "bar-token" + (unk[k] ? " unk" : "");
    label.textContent = token + (unk[k] ? " (unk)" : "");
    const track = document.createElement("div");
    track.className = "bar-track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * weights[k] / vmax).toFixed(1) + "%";
    track.appendChild(bar);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = weights[k].toPrecision(3);
    row.append(label, track, value);
    bars.appendChild(row);
  });
  container.appendChild(bars);
}

function drawHeatmap(container, tokens, matrix, reverse) {
  // Row t: the state after token t; column k: token k's weight in it. Pairs the recurrence
  // cannot connect (k after t in the direction of the run) stay blank.
  const n = tokens.length;
  const cell = Math.max(12, Math.min(28, Math.floor(560 / n)));
  const font = `${Math.max(9, Math.min(12, cell - 3))}px sans-serif`;
  const short = (s) => (s.length > 14 ? s.slice(0, 13) + "\u2026" : s);
  const canvas = document.createElement("canvas");
  canvas.className = "heatmap";
  let ctx = canvas.getContext("2d");
  ctx.font = font;
  const margin = 8 + Math.ceil(Math.max(...tokens.map((t) => ctx.measureText(short(t)).width)));
  canvas.width = margin + n * cell + 4;
  canvas.height = margin + n * cell + 4;
  ctx = canvas.getContext("2d"); // sizing the canvas reset its state
  const vmax = Math.max(...matrix.flat()) || 1;
  for (let t = 0; t < n; t++) {
    for (let k = 0; k < n; k++) {
      if (reverse ? k < t : k > t) continue;
      ctx.fillStyle = colour(matrix[t][k], vmax);
      ctx.fillRect(margin + k * cell, margin + t * cell, cell, cell);
    }
  }
  ctx.fillStyle = "#1d2330";
  ctx.font = font;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  tokens.forEach((token, t) => ctx.fillText(short(token), margin - 4, margin + (t + 0.5) * cell));
  tokens.forEach((token, k) => {
    ctx.save();
    ctx.translate(margin + (k + 0.5) * cell, margin - 4);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "left";
    ctx.fillText(short(token), 0, 0);
    ctx.restore();
  });
  container.appendChild(canvas);
}

function showWeights(view) {
  const parts = $("weights-parts");
  parts.replaceChildren();
  const half = view.direction === "bw" ? "backward" : "forward";
  $("weights-note").textContent =
    `Encoder layer ${view.layer} (${half}): with the identity activation its state ` +
    `${view.state} is exactly a weighted sum of per-token value vectors. Bars: each token's ` +
    `weight (mean over hidden units) in the final state (after "${view.tokens[view.final]}"); ` +
    "heatmap: row t is the state after token t, column k the weight of token k (log colours).";
  for (const part of view.parts) {
    const box = document.createElement("div");
    box.className = "part";
    const title = document.createElement("h3");
    title.textContent = part.label;
    const body = document.createElement("div");
    body.className = "part-body";
    box.append(title, body);
    drawBars(body, view.tokens, view.unk, part.final);
    drawHeatmap(body, view.tokens, part.matrix, view.direction === "bw");
    parts.appendChild(box);
  }
  $("weights").hidden = false;
}

async function translate(event) {
  event.preventDefault();
  const src = $("src").value;
  const button = $("translate");
  button.disabled = true;
  showError("");
  try {
    const [[best]] = await call("POST", "/translate", [{ src, id: 100 }]);
    $("tgt").textContent = best.tgt;
    $("score").textContent = best.pred_score.toFixed(4);
    $("result").hidden = false;
    $("weights").hidden = true;
    if (model && model.weights) showWeights(await call("POST", "/weights", { src }));
  } catch (e) {
    showError(e.message);
  } finally {
    button.disabled = false;
  }
}

$("form").addEventListener("submit", translate);
$("src").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.ctrlKey) $("form").requestSubmit();
});
loadModel();
