// rankgate playground: plain browser JavaScript, no framework, no build step.
// Document and error text only ever reaches the page through textContent, so it cannot inject
// markup.
"use strict";

const $ = (id) => document.getElementById(id);
// sessionStorage: the key lives as long as the tab, is never shared with other tabs, and never
// goes into the URL or localStorage.
const KEY_SLOT = "rankgate.api-key";
const state = { scenarios: [], picked: null, key: "" };

// A 401: the server needs a key, or did not take the one sent.
class KeyRefused extends Error {}

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_SLOT) || "";
  } catch {
    return ""; // storage disabled: the key lasts until the page reloads
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_SLOT, key);
    else sessionStorage.removeItem(KEY_SLOT);
  } catch {
    // storage disabled: nothing to keep
  }
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.key) h.Authorization = "Bearer " + state.key;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) throw new KeyRefused(`${method} ${path}: 401`);
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

// Whether the server wants a key, from its open /v1/cluster/auth; null when it cannot say
// (then the first 401 tells).
async function keyRequired() {
  try {
    const response = await fetch("/v1/cluster/auth");
    if (response.ok) return Boolean((await response.json()).auth);
  } catch {
    // unreachable or not JSON: fall through
  }
  return null;
}

function showKeyPanel(kind) {
  const panel = $("key-panel");
  const note = $("key-status");
  panel.hidden = false;
  panel.dataset.state = kind;
  $("forget-key").hidden = !state.key;
  note.className = kind === "refused" ? "error" : "note";
  note.textContent = {
    needed: "This server needs an API key. Enter it to load the demo scenarios, " +
      "rerank and see ranking health; it is kept for this tab only.",
    checking: "Checking the key...",
    refused: "The server did not accept this API key (401). Check it and enter it again.",
    accepted: "API key accepted; it is kept for this tab only.",
  }[kind];
}

// Called on any 401: a calm prompt when no key was given yet, a clear refusal otherwise.
function keyRefused() {
  if (state.key) {
    storeKey("");
    showKeyPanel("refused");
  } else {
    showKeyPanel("needed");
  }
  $("api-key").focus();
}

// Loads what needs the API (scenarios, ranking health): "ok", "refused" (a 401) or "error".
async function loadAll() {
  const scenarios = state.scenarios.length ? Promise.resolve("ok") : loadScenarios();
  const outcomes = await Promise.all([scenarios, loadHealth()]);
  if (outcomes.includes("refused")) return "refused";
  return outcomes.includes("ok") ? "ok" : "error";
}

async function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  state.key = key;
  storeKey(key);
  if (!key) {
    showKeyPanel("needed");
    return;
  }
  showKeyPanel("checking");
  const outcome = await loadAll();
  if (outcome === "ok") {
    showError(null);
    showKeyPanel("accepted");
  } else if (outcome === "error") {
    $("key-status").textContent = "The key could not be checked: the server did not answer.";
  }
}

function forgetKey() {
  state.key = "";
  storeKey("");
  $("api-key").value = "";
  showKeyPanel("needed");
}

async function start() {
  state.key = storedKey();
  $("api-key").value = state.key;
  const required = await keyRequired();
  if (required && !state.key) {
    showKeyPanel("needed");
    $("api-key").focus();
    $("health-window").textContent = "Ranking health shows once the API key is entered.";
    return;
  }
  if ((await loadAll()) === "ok" && required) showKeyPanel("accepted");
}

function pct(v) {
  return v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + "%";
}

async function loadScenarios() {
  try {
    const data = await call("GET", "/v1/demo/scenarios");
    state.scenarios = data.scenarios;
    const select = $("scenario");
    select.length = 1; // keep "(your own query and documents)"; a reload must not repeat them
    data.scenarios.forEach((s, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = `${s.id} [${s.lang}]: ${s.title}`;
      select.appendChild(option);
    });
    return "ok";
  } catch (err) {
    if (err instanceof KeyRefused) {
      keyRefused();
      return "refused";
    }
    showError(err);
    return "error";
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
    const alpha = (0.15 + 0.5 * Math.abs(strength)).toFixed(2);
    // Okabe-Ito blue (raised) and vermillion (lowered); the CSS adds a solid or dotted underline.
    mark.style.background = strength > 0
      ? `rgba(0, 114, 178, ${alpha})`
      : `rgba(213, 94, 0, ${alpha})`;
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
    if (err instanceof KeyRefused) keyRefused();
    else showError(err);
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
    return "ok";
  } catch (err) {
    if (err instanceof KeyRefused) {
      keyRefused();
      $("health-window").textContent = "Ranking health shows once the API key is entered.";
      return "refused";
    }
    $("health-window").textContent = "Ranking health is not available: " + err.message;
    return "error";
  }
}

$("form").addEventListener("submit", rerank);
$("scenario").addEventListener("change", pickScenario);
$("refresh-health").addEventListener("click", loadHealth);
$("key-form").addEventListener("submit", useKey);
$("forget-key").addEventListener("click", forgetKey);
start();
