// ATC Whisper live page: one column per frequency, fed by Server-Sent Events (/api/events).
// Plain browser JavaScript, no build step and nothing fetched from outside the server.
// Every value from the server is put on the page as text (textContent), never as HTML.
"use strict";

const state = {
  columns: new Map(),        // frequency name -> {section, list, count, badge}
  cards: new Map(),          // transmission id -> [li elements] (column and search results)
  records: new Map(),        // transmission id -> latest record
  // What the live columns show: a callsign substring, a role, a readback outcome (as the
  // API's readback parameter: ok, mismatch, checked, none) and one exchange (exchangeKey).
  filters: {callsign: "", role: "", readback: "", exchange: ""},
  search: {params: null, offset: 0, total: 0},
  recent: 50,
};
const audio = new Audio();
let playing = null;

function $(id) { return document.getElementById(id); }

async function api(path, options = {}) {
  const response = await fetch(path, {credentials: "same-origin", ...options});
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = body && body.error ? body.error.message : String(body);
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

// -- rendering -----------------------------------------------------------------------------

function clock(record) {
  const date = new Date(record.started_at);
  if (Number.isNaN(date.getTime())) return record.started_at;
  return date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
}

function commandLabel(c) {
  // {"type": "contact", "detail": "tower"} -> "contact tower"; {"type": "runway", "value": "27",
  // "qualifier": "land"} -> "runway 27 (land)".
  const present = (p) => p !== undefined && p !== null && p !== "";
  const kind = c.kind || c.type || c.name || c.command || "";
  const label = [kind, c.value, c.unit, c.detail].filter(present).join(" ");
  return present(c.qualifier) ? `${label} (${c.qualifier})` : label;
}

function present(value) { return value !== undefined && value !== null; }

// An exchange id counts within one live session of one frequency; the three name it.
function exchangeKey(r) {
  return present(r.exchange) ? [r.frequency || "", r.session || "", String(r.exchange)].join("\u241f") : "";
}

// Exchange colours: no red, orange or yellow (mismatch, low confidence, callsign). Consecutive
// exchanges of a frequency always differ; the frequency and session shift the sequence, so
// exchange 0 of two columns do not look alike.
const EXCHANGE_HUES = [205, 150, 270, 110, 315, 180, 240, 85];

function exchangeHue(r) {
  let shift = 0;
  for (const ch of `${r.frequency || ""}${r.session || ""}`) shift = (shift * 31 + ch.codePointAt(0)) % 9973;
  return EXCHANGE_HUES[(Number(r.exchange) + shift) % EXCHANGE_HUES.length];
}

function fill(li, r) {
  li.dataset.id = present(r.id) ? String(r.id) : "";
  li.dataset.callsign = (r.callsign || "").toLowerCase();
  li.dataset.started = r.started_at;
  li.dataset.role = r.role || "unknown";
  const readback = r.readback || null;
  li.dataset.readback = readback ? readback.status : "none";
  li.dataset.exchange = exchangeKey(r);
  li.classList.toggle("low", !!r.low_confidence);
  li.classList.toggle("corrected", !!r.text_corrected);
  li.classList.toggle("mismatch", !!readback && readback.status === "mismatch");

  const time = li.querySelector(".tx-time");
  time.textContent = clock(r);
  time.dateTime = r.started_at;
  time.title = r.started_at;
  li.querySelector(".tx-duration").textContent = `${Number(r.duration_s).toFixed(1)} s`;

  const role = li.querySelector(".tx-role");
  role.textContent = r.role && r.role !== "unknown" ? r.role : "";
  role.className = "tx-role" + (r.role ? ` role-${r.role}` : "");
  role.title = present(r.role_score) ? `role score ${Number(r.role_score).toFixed(2)}` : "";

  const callsign = li.querySelector(".tx-callsign");
  callsign.textContent = r.callsign || "";
  callsign.hidden = !r.callsign;

  // The exchange: its id, in a colour of its own, so an instruction and its readbacks pair up by eye.
  const exchange = li.querySelector(".tx-exchange");
  exchange.hidden = !present(r.exchange);
  exchange.textContent = present(r.exchange) ? `ex ${r.exchange}` : "";
  exchange.title = present(r.exchange)
    ? `exchange ${r.exchange}${r.callsign ? " of " + r.callsign : ""} on ${r.frequency}: show only its transmissions`
    : "";
  if (present(r.exchange)) exchange.style.setProperty("--exchange-hue", String(exchangeHue(r)));

  li.querySelector(".tx-frequency").textContent = li.closest("#results") ? r.frequency : "";

  const low = li.querySelector(".tx-low");
  const reasons = (r.reasons || []).join(", ");
  low.textContent = r.low_confidence ? `? low confidence${reasons ? ": " + reasons : ""}` : "";
  low.title = r.low_confidence ? `avg log-prob ${r.avg_logprob}, no-speech ${r.no_speech_prob}` : "";

  const rb = li.querySelector(".tx-readback");
  const diffs = li.querySelector(".tx-differences");
  diffs.replaceChildren();
  rb.textContent = "";
  rb.className = "tx-readback";
  if (readback) {
    rb.textContent = readback.status === "mismatch" ? "readback mismatch" : "readback ok";
    rb.className = `tx-readback readback-${readback.status}`;
    for (const d of readback.differences || []) {
      const item = document.createElement("li");
      item.textContent = d.kind === "missing" ? `${d.item}: ${d.expected} not read back`
        : `${d.item}: expected ${d.expected}, heard ${d.heard}`;
      diffs.append(item);
    }
  }

  const text = li.querySelector(".tx-text");
  const shown = r.text_corrected || r.text;
  text.textContent = shown || "(no speech recognised)";
  text.classList.toggle("empty", !shown);
  const machine = li.querySelector(".tx-machine");
  machine.textContent = r.text_corrected ? `heard: ${r.text || "(nothing)"}` : "";
  machine.hidden = !r.text_corrected;

  const chips = li.querySelector(".tx-commands");
  chips.replaceChildren();
  for (const c of r.commands || []) {
    const label = commandLabel(c);
    if (!label) continue;
    const chip = document.createElement("li");
    chip.className = "chip";
    chip.textContent = label;
    chips.append(chip);
  }

  const play = li.querySelector(".play");
  play.hidden = !r.audio_url;
  li.querySelector(".edit").hidden = !present(r.id);
}

function card(r) {
  const li = $("tx-template").content.firstElementChild.cloneNode(true);
  fill(li, r);
  li.querySelector(".play").addEventListener("click", () => playRecord(li));
  li.querySelector(".tx-callsign").addEventListener("click", () => toggleFilter("callsign", li.dataset.callsign));
  li.querySelector(".tx-exchange").addEventListener("click", () => toggleFilter("exchange", li.dataset.exchange));
  li.querySelector(".edit").addEventListener("click", () => edit(li));
  return li;
}

function remember(li, r) {
  if (!present(r.id)) return;
  const list = state.cards.get(r.id) || [];
  list.push(li);
  state.cards.set(r.id, list);
}

function column(name) {
  if (state.columns.has(name)) return state.columns.get(name);
  $("no-frequencies").hidden = true;
  const section = document.createElement("section");
  section.className = "column";
  section.dataset.frequency = name;
  const head = document.createElement("h2");
  const title = document.createElement("span");
  title.className = "name";
  title.textContent = name;
  const badge = document.createElement("span");
  badge.className = "state";
  const count = document.createElement("span");
  count.className = "count";
  count.textContent = "0";
  head.append(title, badge, count);
  const list = document.createElement("ol");
  list.className = "tx-list";
  section.append(head, list);
  $("columns").append(section);
  const option = document.createElement("option");
  option.value = name;
  option.textContent = name;
  $("search-frequency").append(option);
  const col = {section, list, count, badge};
  state.columns.set(name, col);
  return col;
}

function addTransmission(r) {
  if (r.id !== null && state.records.has(r.id)) {  // already shown (replayed or fetched)
    updateTransmission(r);
    return;
  }
  if (r.id !== null) state.records.set(r.id, r);
  const col = column(r.frequency || "?");
  const li = card(r);
  remember(li, r);
  // Newest on top: before the first card that started earlier.
  let before = null;
  for (const other of col.list.children) {
    if (other.dataset.started < r.started_at) { before = other; break; }
  }
  col.list.insertBefore(li, before);
  applyFilter(li);
  while (col.list.children.length > 500) col.list.lastElementChild.remove();
  countColumn(col);
}

function countColumn(col) {
  const all = col.list.children.length;
  const shown = col.list.querySelectorAll(".tx:not(.filtered-out)").length;
  col.count.textContent = shown === all ? String(all) : `${shown} of ${all}`;
  col.count.title = shown === all ? "transmissions" : "transmissions shown by the filters, of all in the column";
}

function updateTransmission(r) {
  state.records.set(r.id, r);
  for (const li of state.cards.get(r.id) || []) {
    if (li.querySelector("textarea")) continue;
    fill(li, r);
  }
  refilter();
}

function setStatus(s) {
  const col = column(s.name);
  col.badge.textContent = s.state;
  col.badge.className = `state state-${s.state}`;
  col.badge.title = s.message || s.source || "";
}

// -- filters of the live columns ----------------------------------------------------------

function passes(li) {
  const f = state.filters;
  if (f.callsign && !li.dataset.callsign.includes(f.callsign)) return false;
  if (f.role && li.dataset.role !== f.role) return false;
  const readback = li.dataset.readback;  // ok, mismatch or none
  if (f.readback === "checked" && readback === "none") return false;
  if (f.readback && f.readback !== "checked" && readback !== f.readback) return false;
  return !f.exchange || li.dataset.exchange === f.exchange;
}

function applyFilter(li) {
  li.classList.toggle("filtered-out", !passes(li));
}

function refilter() {
  document.querySelectorAll(".columns .tx").forEach(applyFilter);
  for (const col of state.columns.values()) countColumn(col);
  const shown = $("exchange-filter");
  shown.hidden = !state.filters.exchange;
  if (state.filters.exchange) {
    const [frequency, , id] = state.filters.exchange.split("\u241f");
    $("exchange-filter-label").textContent = `exchange ${id} on ${frequency}`;
  }
}

// echo: show the value in its control (not while the listener is typing in it).
function setFilter(name, value, echo = true) {
  // An exchange is a key, kept as it is; the others compare lower-case.
  state.filters[name] = name === "exchange" ? value || "" : (value || "").trim().toLowerCase();
  if (echo && name !== "exchange") $(`${name}-filter`).value = state.filters[name];
  refilter();
}

function toggleFilter(name, value) {  // clicking the same callsign or exchange again clears it
  setFilter(name, state.filters[name] === (name === "exchange" ? value : (value || "").toLowerCase()) ? "" : value);
}

// -- audio ---------------------------------------------------------------------------------

function playRecord(li) {
  const r = state.records.get(Number(li.dataset.id));
  if (!r || !r.audio_url) return;
  if (playing === li && !audio.paused) { audio.pause(); return; }
  if (playing) playing.classList.remove("playing");
  playing = li;
  li.classList.add("playing");
  audio.src = r.audio_url;
  audio.play().catch((err) => { li.classList.remove("playing"); li.title = `cannot play: ${err.message}`; });
}
audio.addEventListener("ended", () => { if (playing) playing.classList.remove("playing"); });
audio.addEventListener("pause", () => { if (playing) playing.classList.remove("playing"); });

// -- corrections ---------------------------------------------------------------------------

function edit(li) {
  if (li.querySelector("textarea")) return;
  const id = Number(li.dataset.id);
  const r = state.records.get(id);
  const text = li.querySelector(".tx-text");
  const box = document.createElement("textarea");
  box.className = "tx-edit";
  box.value = (r && (r.text_corrected || r.text)) || "";
  box.rows = 2;
  const save = document.createElement("button");
  save.type = "button";
  save.className = "save";
  save.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "cancel";
  cancel.textContent = "Cancel";
  const problem = document.createElement("span");
  problem.className = "problem";
  const tools = document.createElement("div");
  tools.className = "edit-tools";
  tools.append(save, cancel, problem);
  text.hidden = true;
  text.after(box, tools);
  box.focus();
  const close = () => { box.remove(); tools.remove(); text.hidden = false; };
  cancel.addEventListener("click", close);
  const submit = async () => {
    save.disabled = true;
    try {
      const updated = await api(`/api/transmissions/${id}`, {
        method: "PATCH", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text: box.value}),
      });
      close();
      updateTransmission(updated);
    } catch (err) {
      problem.textContent = err.message;
      save.disabled = false;
    }
  };
  save.addEventListener("click", submit);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); submit(); }
    if (event.key === "Escape") close();
  });
}

async function exportCorrections() {
  const out = $("export-result");
  out.textContent = "exporting…";
  try {
    const r = await api("/api/corrections/export", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: "{}",
    });
    out.textContent = `${r.rows} corrected transmissions written to ${r.path}`
      + (r.without_audio ? ` (${r.without_audio} without saved audio left out)` : "")
      + ` — import with: ${r.import_command}`;
  } catch (err) {
    out.textContent = `export failed: ${err.message}`;
  }
}

// -- search --------------------------------------------------------------------------------

function isoFromLocal(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().replace(/\.\d{3}Z$/, "");
}

async function runSearch(more = false) {
  const form = $("search-form");
  if (!more) {
    const params = new URLSearchParams();
    const q = form.q.value.trim();
    if (q) params.set("q", q);
    if (form.callsign.value.trim()) params.set("callsign", form.callsign.value.trim());
    if (form.frequency.value) params.set("frequency", form.frequency.value);
    const since = isoFromLocal(form.since.value);
    const until = isoFromLocal(form.until.value);
    if (since) params.set("since", since);
    if (until) params.set("until", until);
    if (form.low_confidence.checked) params.set("low_confidence", "true");
    if (form.corrected.checked) params.set("corrected", "true");
    if (form.role.value) params.set("role", form.role.value);
    if (form.readback.value) params.set("readback", form.readback.value);
    state.search = {params, offset: 0, total: 0};
    $("results-list").replaceChildren();
  }
  const params = new URLSearchParams(state.search.params);
  params.set("limit", "50");
  params.set("offset", String(state.search.offset));
  const section = $("results");
  section.hidden = false;
  try {
    const page = await api(`/api/transmissions?${params}`);
    for (const r of page.items) {
      if (!state.records.has(r.id)) state.records.set(r.id, r);
      const li = card(r);
      $("results-list").append(li);
      fill(li, r);  // again, now that it is inside #results (shows the frequency)
      remember(li, r);
    }
    state.search.offset += page.items.length;
    state.search.total = page.total;
    $("results-title").textContent = `${page.total} transcript${page.total === 1 ? "" : "s"} found`;
    $("results-more").hidden = state.search.offset >= page.total;
  } catch (err) {
    $("results-title").textContent = `search failed: ${err.message}`;
  }
}

// -- start-up ------------------------------------------------------------------------------

function connect() {
  const conn = $("conn");
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { conn.textContent = "live"; conn.className = "conn up"; });
  events.addEventListener("error", () => { conn.textContent = "reconnecting…"; conn.className = "conn down"; });
  events.addEventListener("transmission", (e) => addTransmission(JSON.parse(e.data)));
  events.addEventListener("correction", (e) => updateTransmission(JSON.parse(e.data)));
  events.addEventListener("status", (e) => setStatus(JSON.parse(e.data)));
}

async function start() {
  $("export").addEventListener("click", exportCorrections);
  $("callsign-filter").addEventListener("input", (e) => setFilter("callsign", e.target.value, false));
  $("role-filter").addEventListener("change", (e) => setFilter("role", e.target.value));
  $("readback-filter").addEventListener("change", (e) => setFilter("readback", e.target.value));
  $("exchange-clear").addEventListener("click", () => setFilter("exchange", ""));
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch(false); });
  $("search-clear").addEventListener("click", () => { $("search-form").reset(); $("results").hidden = true; });
  $("results-close").addEventListener("click", () => { $("results").hidden = true; });
  $("results-more").addEventListener("click", () => runSearch(true));
  let health = null;
  try {
    health = await api("/api/health");
  } catch (err) {
    $("conn").textContent = `server unreachable: ${err.message}`;
    $("conn").className = "conn down";
    return;
  }
  document.title = `ATC Whisper — ${health.model}`;
  state.recent = health.recent || state.recent;
  for (const f of health.frequencies) setStatus(f);
  $("no-frequencies").hidden = health.frequencies.length > 0;
  // Earlier transmissions of each frequency from the catalogue, then the live stream.
  await Promise.all(health.frequencies.map(async (f) => {
    try {
      const page = await api(`/api/transmissions?frequency=${encodeURIComponent(f.name)}&limit=${state.recent}`);
      for (const r of page.items) addTransmission(r);
    } catch (err) { /* the stream still fills the column */ }
  }));
  connect();
}

document.addEventListener("DOMContentLoaded", start);
