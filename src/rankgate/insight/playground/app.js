// rankgate playground: plain browser JavaScript, no framework, no build step.
// Document text only ever reaches the page through textContent, so it cannot inject markup.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { scenarios: [], picked: null };

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = data.message || data.detail || data.error || response.statusText;
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(message)}`);
  }
  return data;
}

function showError(err) {
  const box = $("error");
  box.hidden = !err;
  box.textContent = err ? String(err.message || err) : "";
}

function pct(v) {
  return v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + "%";
}

async function loadScenarios() {
  try {
    const data = await call("GET", "/v1/demo/scenarios");
    state.scenarios = data.scenarios;
    const select = $("scenario");
    data.scenarios.forEach((s, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = `${s.id} [${s.lang}]: ${s.title}`;
      select.appendChild(option);
    });
  } catch (err) {
    showError(err);
  }
}

function pickScenario() {
  const value = $("scenario").value;
  state.picked = value === "" ? null : state.scenarios[Number(value)];
  const note = $("expected");
  if (!state.picked) {
    note.hidden = true;
    return;
  }
  const s = state.picked;
  $("query").value = s.query;
  // One document per line: scenario documents are single paragraphs.
  $("documents").value = s.documents.map((d) => d.text.replace(/\s*\n\s*/g, " ")).join("\n");
  note.hidden = false;
  note.textContent =
    `Expected best: ${s.expected_best} (${s.why[s.expected_best] || ""}) ` +
    `Expected worst: ${s.expected_worst} (${s.why[s.expected_worst] || ""})`;
}

function documentId(index) {
  const s = state.picked;
  const docs = $("documents").value;
  // Scenario ids only apply while the documents are still the scenario's.
  if (s && docs === s.documents.map((d) => d.text.replace(/\s*\n\s*/g, " ")).join("\n")) {
    return s.documents[index] ? s.documents[index].id : null;
  }
  return null;
}

function renderSegments(target, explanation) {
  const scale = Math.max(0, ...explanation.segments.map((s) => Math.abs(s.contribution)));
  target.textContent = "";
  for (const seg of explanation.segments) {
    const strength = scale > 0 ? seg.contribution / scale : 0;
    if (Math.abs(strength) < 0.1) {
      target.appendChild(document.createTextNode(seg.text));
      continue;
    }
    const mark = document.createElement("mark");
    mark.className = strength > 0 ? "up" : "down";
    mark.style.background = strength > 0
      ? `rgba(46, 158, 46, ${(0.15 + 0.6 * Math.abs(strength)).toFixed(2)})`
      : `rgba(200, 55, 55, ${(0.15 + 0.6 * Math.abs(strength)).toFixed(2)})`;
    mark.title = (seg.contribution >= 0 ? "+" : "") + seg.contribution.toFixed(3) + " logit";
    mark.textContent = seg.text;
    target.appendChild(mark);
  }
}

function renderResult(result, rank, query) {
  const li = document.createElement("li");
  li.className = "result";
  li.dataset.index = String(result.index);
  const id = documentId(result.index);
  if (id) li.dataset.docId = id;
  if (state.picked && id === state.picked.expected_best) li.classList.add("expected-best");

  const meta = document.createElement("div");
  meta.className = "meta";
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = (100 * Math.max(0, Math.min(1, result.relevance_score))).toFixed(1) + "%";
  bar.appendChild(fill);
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = result.relevance_score.toFixed(4);
  const moved = document.createElement("span");
  moved.className = "moved";
  const from = result.index + 1;
  moved.textContent = (id ? `${id}, ` : "") + `retrieval #${from}` +
    (from === rank ? "" : from > rank ? ` (up ${from - rank})` : ` (down ${rank - from})`);
  meta.append(bar, score, moved);

  const text = document.createElement("div");
  text.className = "text";
  text.textContent = result.document ? result.document.text : "";
  li.append(meta, text);
  return { li, text, query, document: text.textContent };
}

async function rerank(event) {
  event.preventDefault();
  showError(null);
  const panel = $("results-panel");
  const query = $("query").value.trim();
  const documents = $("documents").value.split("\n").map((d) => d.trim()).filter(Boolean);
  if (!query || documents.length === 0) {
    showError("Give a query and at least one document.");
    return;
  }
  const body = { query, documents, return_documents: true };
  const topN = parseInt($("top-n").value, 10);
  if (topN > 0) body.top_n = topN;
  $("rerank").disabled = true;
  panel.dataset.state = "busy";
  $("status").textContent = "scoring...";
  try {
    const data = await call("POST", "/v1/rerank", body);
    const list = $("results");
    list.textContent = "";
    const rows = data.results.map((r, i) => renderResult(r, i + 1, query));
    rows.forEach((row) => list.appendChild(row.li));
    $("status").textContent = `${data.results.length} of ${documents.length} documents`;
    if ($("explain").checked) {
      $("status").textContent += ", explaining...";
      await Promise.all(rows.map(async (row) => {
        const explanation = await call("POST", "/v1/explain", { query, document: row.document });
        renderSegments(row.text, explanation);
      }));
      $("status").textContent = `${data.results.length} of ${documents.length} documents, explained`;
    }
    panel.dataset.state = "done";
  } catch (err) {
    panel.dataset.state = "error";
    $("status").textContent = "";
    showError(err);
  } finally {
    $("rerank").disabled = false;
    loadHealth();
  }
}

async function loadHealth() {
  try {
    const report = await call("GET", "/v1/health/ranking");
    const snap = report.snapshot;
    const values = {
      displacement: pct(snap.displacement_rate),
      gap: snap.mean_gap === null ? "n/a" : snap.mean_gap.toFixed(3),
      low_share: `${pct(snap.low_share)} (older ${pct(snap.low_share_older)}, ` +
        `recent ${pct(snap.low_share_recent)})`,
    };
    for (const row of document.querySelectorAll("#health tr")) {
      const metric = row.dataset.metric;
      row.querySelector(".value").textContent = values[metric];
      const verdict = row.querySelector(".verdict");
      if (!snap.ready) {
        verdict.className = "verdict wait";
        verdict.textContent = `needs ${report.thresholds.min_requests} reranks`;
      } else {
        const alerting = snap.alerts[metric];
        verdict.className = "verdict " + (alerting ? "alert" : "ok");
        verdict.textContent = alerting ? "ALERT" : "ok";
      }
    }
    $("health-window").textContent =
      `${snap.requests} reranks in the window (of ${report.thresholds.window}); ` +
      `${report.totals.reranks} since start.`;
  } catch (err) {
    $("health-window").textContent = "Ranking health is not available: " + err.message;
  }
}

$("form").addEventListener("submit", rerank);
$("scenario").addEventListener("change", pickScenario);
$("refresh-health").addEventListener("click", loadHealth);
loadScenarios();
loadHealth();
