// Contexta dashboard: plain ES module, no build step. Everything captured (names, messages, params,
// attributes) is put on the page with textContent or DOM properties, never as HTML.

const view = document.getElementById("view");
const liveBadge = document.getElementById("live");

// ---------------------------------------------------------------- DOM helpers

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "href") node.setAttribute("href", safeHref(value));
      else if (name in node && typeof value !== "string") node[name] = value;
      else node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function safeHref(value) {
  const text = String(value);
  return text.startsWith("#") ? text : "#/";
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function runHref(runId) {
  return "#/run/" + encodeURIComponent(runId);
}

function fmtNumber(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(4);
  return String(Number(value.toPrecision(6)));
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return (seconds * 1000).toFixed(0) + " ms";
  if (seconds < 120) return seconds.toFixed(1) + " s";
  if (seconds < 7200) return (seconds / 60).toFixed(1) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

function fmtCell(column, value) {
  if (value === null || value === undefined) return "";
  if (column === "duration") return fmtDuration(value);
  if (typeof value === "object") return JSON.stringify(value);
  return fmtNumber(value);
}

function statusSpan(status) {
  return el("span", { class: "status status-" + String(status).replace(/[^a-z_]/g, ""), text: status });
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, params, init) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    url.searchParams.set(name, String(value));
  }
  const response = await fetch(url, { credentials: "same-origin", ...(init || {}) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    throw new ApiError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
  }
  return body;
}

function errorBox(error) {
  return el("div", { class: "error", text: error && error.message ? error.message : String(error) });
}

// ---------------------------------------------------------------- live updates (one stream per page)

const live = {
  source: null,
  handlers: null,
  watch(spec, handlers) {
    this.close();
    this.handlers = handlers;
    const url = new URL("/api/stream", location.origin);
    if (spec.runs) url.searchParams.set("runs", "1");
    for (const series of spec.series || []) {
      url.searchParams.append("series", [series.runId, series.stage || "", series.key, series.cursor || 0].join("|"));
    }
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => {
      liveBadge.textContent = "live";
      liveBadge.classList.add("on");
    });
    source.addEventListener("error", () => {
      liveBadge.textContent = "reconnecting";
      liveBadge.classList.remove("on");
    });
    source.addEventListener("hello", () => handlers.hello && handlers.hello());
    source.addEventListener("runs", (event) => handlers.runs && handlers.runs(JSON.parse(event.data)));
    source.addEventListener("series", (event) => handlers.series && handlers.series(JSON.parse(event.data)));
  },
  close() {
    if (this.source) this.source.close();
    this.source = null;
    liveBadge.textContent = "offline";
    liveBadge.classList.remove("on");
  },
};
window.__contextaLive = live;

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ---------------------------------------------------------------- runs table

const runsState = {
  filter: "",
  sort: "-started_at",
  columns: [],
  archived: false,
  offset: 0,
  limit: 50,
  selected: new Set(),
};

async function showRuns() {
  const filterInput = el("input", {
    type: "search",
    id: "filter",
    placeholder: "filter: metrics.accuracy > 0.9 and params.lr < 0.1",
    value: runsState.filter,
    spellcheck: false,
  });
  const filterError = el("div", { id: "filter-error", class: "error hidden" });
  const archived = el("input", { type: "checkbox", id: "archived", checked: runsState.archived });
  const compareButton = el("button", { id: "compare", text: "Compare selected", disabled: true });
  const chooser = el("div", { class: "columns-chooser" });
  const table = el("table", { id: "runs" });
  const pageInfo = el("span", { class: "muted", id: "page-info" });
  const prev = el("button", { text: "\u2190 Newer", id: "prev" });
  const next = el("button", { text: "Older \u2192", id: "next" });
  clear(view);
  view.append(
    el("h1", { text: "Runs" }),
    el(
      "div",
      { class: "toolbar" },
      filterInput,
      el("button", { text: "Apply", id: "apply", onclick: () => applyFilter() }),
      chooser,
      el("label", {}, archived, " archived"),
      compareButton,
    ),
    filterError,
    el("div", { class: "table-wrap" }, table),
    el("div", { class: "pager" }, prev, next, pageInfo),
  );

  function applyFilter() {
    runsState.filter = filterInput.value.trim();
    runsState.offset = 0;
    load();
  }
  filterInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") applyFilter();
  });
  archived.addEventListener("change", () => {
    runsState.archived = archived.checked;
    runsState.offset = 0;
    load();
  });
  prev.addEventListener("click", () => {
    runsState.offset = Math.max(0, runsState.offset - runsState.limit);
    load();
  });
  next.addEventListener("click", () => {
    runsState.offset += runsState.limit;
    load();
  });
  compareButton.addEventListener("click", () => {
    const ids = [...runsState.selected];
    location.hash = "#/compare?" + ids.map((id) => "run=" + encodeURIComponent(id)).join("&");
  });
  const updateCompare = () => {
    compareButton.disabled = runsState.selected.size < 2;
    compareButton.textContent = "Compare selected (" + runsState.selected.size + ")";
  };
  updateCompare();
  buildColumnChooser(chooser, () => load());

  let loading = 0;
  async function load() {
    const ticket = ++loading;
    let page;
    try {
      page = await api("/api/runs", {
        filter: runsState.filter,
        sort: runsState.sort,
        columns: runsState.columns.join(","),
        archived: runsState.archived ? 1 : "",
        offset: runsState.offset,
        limit: runsState.limit,
      });
    } catch (error) {
      if (ticket !== loading) return;
      filterError.textContent = error.message;
      filterError.classList.remove("hidden");
      filterInput.setAttribute("aria-invalid", "true");
      return;
    }
    if (ticket !== loading) return;
    filterError.classList.add("hidden");
    filterError.textContent = "";
    filterInput.removeAttribute("aria-invalid");
    renderRunsTable(table, page, updateCompare, load);
    prev.disabled = runsState.offset === 0;
    next.disabled = !page.has_more;
    pageInfo.textContent =
      page.rows.length === 0 ? "no runs" : `runs ${page.offset + 1}\u2013${page.offset + page.rows.length}`;
  }
  await load();
  const reload = debounce(load, 250);
  live.watch({ runs: true }, { runs: reload, hello: reload });
}

function renderRunsTable(table, page, updateCompare, load) {
  clear(table);
  const head = el("tr", {}, el("th", {}, ""));
  const sortName = runsState.sort.replace(/^-/, "");
  const descending = runsState.sort.startsWith("-");
  for (const column of page.columns) {
    const th = el("th", { class: "sortable", text: column, title: "sort by " + column });
    th.dataset.column = column;
    if (column === sortName) th.classList.add(descending ? "sorted-desc" : "sorted-asc");
    th.addEventListener("click", () => {
      runsState.sort = column === sortName && !descending ? "-" + column : column;
      runsState.offset = 0;
      load();
    });
    head.append(th);
  }
  const body = el("tbody");
  const runIdIndex = page.columns.indexOf("run_id");
  for (const row of page.rows) {
    const runId = row[runIdIndex];
    const check = el("input", { type: "checkbox", checked: runsState.selected.has(runId) });
    check.addEventListener("change", () => {
      if (check.checked) runsState.selected.add(runId);
      else runsState.selected.delete(runId);
      updateCompare();
    });
    const tr = el("tr", {}, el("td", {}, check));
    tr.dataset.runId = runId;
    page.columns.forEach((column, index) => {
      const value = row[index];
      let cell;
      if (column === "run_id") cell = el("td", {}, el("a", { href: runHref(runId), text: value }));
      else if (column === "status") cell = el("td", {}, statusSpan(value));
      else cell = el("td", { class: typeof value === "number" ? "num" : "", text: fmtCell(column, value) });
      cell.dataset.column = column;
      tr.append(cell);
    });
    body.append(tr);
  }
  table.append(el("thead", {}, head), body);
}

async function buildColumnChooser(container, onChange) {
  const toggle = el("button", { text: "Columns \u25BE", id: "columns-toggle" });
  const panel = el("div", { class: "panel hidden", id: "columns-panel" });
  toggle.addEventListener("click", () => panel.classList.toggle("hidden"));
  container.append(toggle, panel);
  let fields;
  try {
    fields = await api("/api/fields");
  } catch (error) {
    panel.append(errorBox(error));
    return;
  }
  const names = [...fields.params, ...fields.metrics];
  if (names.length === 0) panel.append(el("div", { class: "muted", text: "no params or metrics yet" }));
  for (const name of names) {
    const box = el("input", { type: "checkbox", checked: runsState.columns.includes(name) });
    box.dataset.field = name;
    box.addEventListener("change", () => {
      if (box.checked) runsState.columns.push(name);
      else runsState.columns = runsState.columns.filter((column) => column !== name);
      onChange();
    });
    panel.append(el("label", {}, box, " ", name));
  }
}

// ---------------------------------------------------------------- charts

const chartSettings = { x: "step", log: false, smoothing: 0 };

// TensorBoard's smoothing: an exponential moving average debiased by 1 - w^n (n: finite points seen).
function smooth(ys, weight) {
  if (!weight) return ys;
  const out = new Array(ys.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !Number.isFinite(y)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    count += 1;
    out[i] = last / (1 - Math.pow(weight, count));
  }
  return out;
}

class MetricChart {
  constructor(runId, stage, key, container, options) {
    this.runId = runId;
    this.stage = stage;
    this.key = key;
    this.container = container;
    this.label = options && options.label;
    this.xs = [];
    this.ys = [];
    this.cursor = 0;
    this.total = 0;
    this.zoom = null; // [x0, x1] while zoomed in
    this.plot = null;
    this.programmatic = false;
    this.refetchSoon = debounce(() => this.fetch(), 300);
    this.meta = el("div", { class: "meta" });
    this.area = el("div", { class: "plot" });
    container.append(this.area, this.meta);
  }

  width() {
    return Math.max(200, Math.floor(this.container.clientWidth || 500) - 12);
  }

  async fetch() {
    const params = { key: this.key, stage: this.stage || "", x: chartSettings.x, width: this.width() };
    if (this.zoom) {
      params.x0 = this.zoom[0];
      params.x1 = this.zoom[1];
    }
    let data;
    try {
      data = await api("/api/runs/" + encodeURIComponent(this.runId) + "/series", params);
    } catch (error) {
      clear(this.meta);
      this.meta.append(errorBox(error));
      return;
    }
    this.xs = data.xs;
    this.ys = data.ys;
    this.total = data.total_points;
    if (!this.zoom) this.cursor = Math.max(this.cursor, data.last_seq);
    this.downsampled = data.downsampled;
    this.draw();
  }

  data() {
    let ys = this.ys;
    if (chartSettings.log) ys = ys.map((y) => (y !== null && y > 0 ? y : null));
    const smoothed = smooth(ys, chartSettings.smoothing);
    return chartSettings.smoothing ? [this.xs, ys, smoothed] : [this.xs, ys];
  }

  draw() {
    const data = this.data();
    this.meta.textContent =
      `${this.total} point${this.total === 1 ? "" : "s"}` + (this.downsampled ? `, ${this.xs.length} drawn` : "") + (this.zoom ? " (zoomed: double-click to reset)" : "");
    if (this.plot && this.plot.series.length === data.length && this.plotLog === chartSettings.log && this.plotX === chartSettings.x) {
      this.programmatic = true;
      this.plot.setData(data, !this.zoom);
      this.programmatic = false;
      return;
    }
    if (this.plot) this.plot.destroy();
    const raw = { label: this.label || this.key, stroke: "#2f6fdb", width: 1, spanGaps: false };
    const series = [{ label: chartSettings.x === "time" ? "time" : "step" }, raw];
    if (chartSettings.smoothing) {
      raw.stroke = "rgba(47,111,219,0.3)";
      series.push({ label: "smoothed", stroke: "#2f6fdb", width: 2 });
    }
    this.plotLog = chartSettings.log;
    this.plotX = chartSettings.x;
    const opts = {
      width: this.width(),
      height: 240,
      series,
      scales: { x: { time: chartSettings.x === "time" }, y: chartSettings.log ? { distr: 3 } : {} },
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      hooks: { setSelect: [(u) => this.onSelect(u)] },
    };
    this.programmatic = true;
    this.plot = new uPlot(opts, data, this.area);
    this.programmatic = false;
    this.plot.over.addEventListener("dblclick", () => {
      if (!this.zoom) return;
      this.zoom = null;
      this.fetch();
    });
  }

  // A drag across the plot (uPlot zooms to it at once): fetch that range again, downsampled to it.
  onSelect(u) {
    if (this.programmatic || u.select.width <= 0) return;
    const min = u.posToVal(u.select.left, "x");
    const max = u.posToVal(u.select.left + u.select.width, "x");
    if (!Number.isFinite(min) || !Number.isFinite(max) || min >= max) return;
    this.zoom = [min, max];
    this.refetchSoon();
  }

  // New points from the live stream, after this chart's cursor. A reconnected stream starts again
  // from the cursors in its URL, so points the chart already has (seq <= cursor) are skipped.
  append(update) {
    if (update.reset) {
      this.cursor = Math.max(this.cursor, update.last_seq);
      if (!this.zoom) this.refetchSoon();
      return;
    }
    let first = 0;
    while (first < update.values.length && update.seqs && update.seqs[first] <= this.cursor) first++;
    if (first === update.values.length) return;
    this.cursor = Math.max(this.cursor, update.last_seq);
    this.total += update.values.length - first;
    if (this.zoom) return; // the zoomed range is as fetched; reset shows the new points
    const xs = chartSettings.x === "time" ? update.times : update.steps;
    let lastX = this.xs.length ? this.xs[this.xs.length - 1] : -Infinity;
    for (let i = first; i < update.values.length; i++) {
      let x = xs[i];
      if (x === null) x = lastX + 1;
      this.xs.push(x);
      this.ys.push(update.values[i]);
      lastX = x;
    }
    if (this.xs.length > 4 * this.width()) this.refetchSoon();
    else this.draw();
  }

  destroy() {
    if (this.plot) this.plot.destroy();
  }
}

// ---------------------------------------------------------------- run view

function flatten(value, prefix, out) {
  if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? prefix + "." + key : key, out);
  } else {
    out.push([prefix, value]);
  }
  return out;
}

function keyValueTable(rows, id) {
  const body = el("tbody");
  for (const [key, value] of rows) {
    body.append(el("tr", {}, el("td", { text: key }), el("td", { text: typeof value === "object" ? JSON.stringify(value) : String(value) })));
  }
  return el("table", { id }, el("thead", {}, el("tr", {}, el("th", { text: "name" }), el("th", { text: "value" }))), body);
}

function simpleTable(columns, rows, id) {
  const head = el("tr", {}, columns.map((column) => el("th", { text: column })));
  const body = el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((cell) => (cell instanceof Node ? el("td", {}, cell) : el("td", { text: cell ?? "" }))))));
  return el("table", { id }, el("thead", {}, head), body);
}

function timeline(detail) {
  const parse = (text) => (text ? Date.parse(text) : NaN);
  const start = parse(detail.run.started_at);
  const ends = [detail.run.ended_at, ...detail.stages.map((s) => s.ended_at), ...detail.batches.map((b) => b.ended_at)].map(parse).filter(Number.isFinite);
  const end = Math.max(start + 1, Date.now() > start && !detail.run.ended_at ? Date.now() : start + 1, ...ends);
  const box = el("div", { class: "timeline", id: "timeline" });
  const place = (row, item, kind) => {
    const from = parse(item.started_at);
    const to = Number.isFinite(parse(item.ended_at)) ? parse(item.ended_at) : end;
    const bar = el("div", { class: "bar " + kind + (item.status === "failed" ? " failed" : ""), text: item.name, title: `${item.name}: ${item.status}` });
    bar.style.left = ((100 * (from - start)) / (end - start)).toFixed(2) + "%";
    bar.style.width = Math.max(0.3, (100 * (to - from)) / (end - start)).toFixed(2) + "%";
    row.append(bar);
  };
  for (const stage of detail.stages) {
    const row = el("div", { class: "row" });
    place(row, stage, "stage");
    box.append(row);
    const batches = detail.batches.filter((batch) => batch.stage_id === stage.stage_id);
    if (batches.length) {
      const batchRow = el("div", { class: "row" });
      for (const batch of batches) place(batchRow, batch, "batch");
      box.append(batchRow);
    }
    const samples = detail.samples.filter((sample) => sample.stage_id === stage.stage_id);
    if (samples.length) {
      const failed = samples.filter((sample) => sample.status === "failed").length;
      box.append(el("div", { class: "muted", text: `  ${stage.name}: ${samples.length} samples` + (failed ? `, ${failed} failed` : "") }));
    }
  }
  if (!detail.stages.length) box.append(el("div", { class: "muted", text: "no stages" }));
  return box;
}

let activeCharts = [];

async function showRun(runId) {
  clear(view);
  view.append(el("p", { class: "muted", text: "loading\u2026" }));
  let detail;
  try {
    detail = await api("/api/runs/" + encodeURIComponent(runId));
  } catch (error) {
    clear(view);
    view.append(el("h1", { text: runId }), errorBox(error));
    return;
  }
  const run = detail.run;
  clear(view);
  const statusCell = statusSpan(run.status);
  statusCell.id = "run-status";
  view.append(
    el("h1", {}, el("span", { id: "run-name", text: run.name }), " ", statusCell),
    el("div", { class: "tabs" }, el("a", { href: "#/", text: "\u2190 Runs" }), el("a", { href: runHref(run.run_id) + "/samples", text: `Samples (${detail.sample_count})` })),
  );
  const summary = el("dl", { class: "summary", id: "summary" });
  const add = (label, value) => {
    if (value === null || value === undefined || value === "") return;
    summary.append(el("dt", { text: label }), el("dd", { text: value }));
  };
  add("run", run.run_id);
  add("project", run.project_name);
  add("status", run.status);
  add("started", run.started_at);
  add("ended", run.ended_at);
  add("end reason", run.end_reason);
  add("dataset", run.dataset_ref);
  add("code revision", run.code_revision);
  add("tags", run.tags && Object.keys(run.tags).length ? JSON.stringify(run.tags) : "");
  add("records", Object.entries(detail.record_counts).map(([k, v]) => `${v} ${k}`).join(", "));
  for (const note of run.notes || []) add("note " + note.added_at, note.text);
  view.append(el("h2", { text: "Summary" }), summary);

  const diagnostics = el("div", { id: "diagnostics" });
  if (run.failure) {
    diagnostics.append(el("p", { class: "sev-error", text: `${run.failure.type || "failure"}: ${run.failure.message || ""}` }));
    if (run.failure.traceback) diagnostics.append(el("pre", { text: run.failure.traceback }));
  }
  const issues = detail.diagnostics.issues;
  if (issues.length) {
    diagnostics.append(simpleTable(["severity", "code", "summary", "subject"], issues.map((issue) => [el("span", { class: "sev-" + issue.severity, text: issue.severity }), issue.code, issue.summary, issue.subject_ref])));
  } else if (!run.failure) {
    diagnostics.append(el("p", { class: "muted", text: "no issues" }));
  }
  for (const note of detail.diagnostics.completeness_notes) diagnostics.append(el("p", { class: "muted", text: note }));

  // Charts
  const controls = el("div", { class: "toolbar" });
  const xSelect = el("select", { id: "x-axis" }, el("option", { value: "step", text: "x: step" }), el("option", { value: "time", text: "x: time" }));
  xSelect.value = chartSettings.x;
  const logBox = el("input", { type: "checkbox", id: "log-scale", checked: chartSettings.log });
  const smoothing = el("input", { type: "range", id: "smoothing", min: "0", max: "0.99", step: "0.01", value: String(chartSettings.smoothing) });
  const smoothingValue = el("span", { text: String(chartSettings.smoothing) });
  controls.append(xSelect, el("label", {}, logBox, " log scale"), el("label", {}, "smoothing ", smoothing, " "), smoothingValue);
  const charts = el("div", { class: "charts", id: "charts" });
  view.append(el("h2", { text: "Metrics" }), controls, charts);
  activeCharts.forEach((chart) => chart.destroy());
  activeCharts = [];
  const noSeries = el("p", { class: "muted", text: "no metric series" });
  // A chart per series (a key in a stage); called again when a live run captures a new key.
  const addCharts = (metrics) => {
    const added = [];
    for (const metric of metrics.filter((m) => m.point_count > 0)) {
      if (activeCharts.length >= 48) break;
      const known = activeCharts.some((c) => (c.stage || null) === (metric.stage_name || null) && c.key === metric.metric_key);
      if (known) continue;
      const card = el("div", { class: "chart" });
      card.dataset.key = metric.metric_key;
      card.dataset.stage = metric.stage_name || "";
      card.append(el("h3", { text: (metric.stage_name ? metric.stage_name + " / " : "") + metric.metric_key }));
      charts.append(card);
      const chart = new MetricChart(run.run_id, metric.stage_name, metric.metric_key, card);
      activeCharts.push(chart);
      added.push(chart);
    }
    if (activeCharts.length) noSeries.remove();
    else charts.append(noSeries);
    return added;
  };
  addCharts(detail.metrics);
  const redrawAll = () => activeCharts.forEach((chart) => chart.draw());
  xSelect.addEventListener("change", () => {
    chartSettings.x = xSelect.value;
    activeCharts.forEach((chart) => {
      chart.zoom = null;
      chart.fetch();
    });
  });
  logBox.addEventListener("change", () => {
    chartSettings.log = logBox.checked;
    redrawAll();
  });
  smoothing.addEventListener("input", () => {
    chartSettings.smoothing = Number(smoothing.value);
    smoothingValue.textContent = smoothing.value;
    redrawAll();
  });

  view.append(el("h2", { text: "Diagnostics" }), diagnostics);
  view.append(el("h2", { text: "Timeline" }), timeline(detail));
  view.append(el("h2", { text: "Params" }), keyValueTable(flatten(detail.params, "", []), "params"));
  const env = detail.environment;
  if (env) {
    const rows = [["python", env.python_version], ["platform", env.platform]];
    for (const [name, value] of Object.entries(env)) {
      if (!["python_version", "platform", "packages"].includes(name) && value !== null && value !== undefined) rows.push([name, value]);
    }
    const packages = Object.entries(env.packages || {});
    view.append(el("h2", { text: "Environment" }), keyValueTable(rows, "environment"), el("details", {}, el("summary", { text: `${packages.length} packages` }), keyValueTable(packages, "packages")));
  }

  const events = simpleTable(
    ["time", "level", "event", "stage", "message", "attributes"],
    detail.events.map((event) => [event.observed_at, el("span", { class: "sev-" + event.level, text: event.level }), event.event_key, event.stage || "", event.message, event.attributes ? JSON.stringify(event.attributes) : ""]),
    "events",
  );
  view.append(el("h2", { text: `Events (${detail.event_count})` }), events);

  const artifacts = simpleTable(
    ["artifact", "kind", "size", "digest", "verify"],
    detail.artifacts.map((artifact) => {
      const result = el("span", { class: "verify-result" });
      const button = el("button", { text: "Verify" });
      button.addEventListener("click", async () => {
        result.textContent = "\u2026";
        try {
          const answer = await api("/api/artifacts/verify", null, {
            method: "POST",
            headers: { "Content-Type": "application/json", "X-Contexta": "1" },
            body: JSON.stringify({ artifact_ref: artifact.artifact_ref }),
          });
          result.textContent = answer.status;
          result.className = "verify-result " + (answer.status === "verified" ? "status-completed" : "status-failed");
        } catch (error) {
          result.textContent = error.message;
        }
      });
      return [artifact.artifact_ref, artifact.kind, artifact.size_bytes === null ? "" : String(artifact.size_bytes), el("span", { class: "digest", text: `${artifact.hash_algorithm}:${artifact.hash_value || ""}` }), el("span", {}, button, result)];
    }),
    "artifacts",
  );
  view.append(el("h2", { text: "Artifacts" }), artifacts);

  await Promise.all(activeCharts.map((chart) => chart.fetch()));
  const refreshStatus = debounce(async () => {
    try {
      const fresh = await api("/api/runs/" + encodeURIComponent(run.run_id));
      statusCell.textContent = fresh.run.status;
      statusCell.className = "status status-" + fresh.run.status;
      const added = addCharts(fresh.metrics);
      if (added.length) {
        await Promise.all(added.map((chart) => chart.fetch()));
        watchRun(); // the stream now carries the new series too
      }
    } catch (error) {
      /* the run may be gone; keep what is shown */
    }
  }, 200);
  const watchRun = () => live.watch(
    { runs: true, series: activeCharts.map((chart) => ({ runId: chart.runId, stage: chart.stage, key: chart.key, cursor: chart.cursor })) },
    {
      runs: (message) => {
        if (message.changes.some((change) => change.run_id === run.run_id)) refreshStatus();
      },
      series: (message) => {
        for (const update of message.series) {
          const chart = activeCharts.find((c) => c.runId === update.run_id && (c.stage || null) === (update.stage || null) && c.key === update.key);
          if (chart) chart.append(update);
        }
      },
    },
  );
  watchRun();
}

// ---------------------------------------------------------------- samples view

async function showSamples(runId, query) {
  const state = { failed: query.get("failed") === "1", sort: query.get("sort") || "", stage: query.get("stage") || "", offset: 0, limit: 100 };
  clear(view);
  const failedBox = el("input", { type: "checkbox", id: "failed-only", checked: state.failed });
  const table = el("table", { id: "samples" });
  const info = el("span", { class: "muted" });
  const errors = el("div");
  const prev = el("button", { text: "\u2190 Previous" });
  const next = el("button", { text: "Next \u2192" });
  view.append(
    el("h1", { text: "Samples of " + runId }),
    el("div", { class: "tabs" }, el("a", { href: runHref(runId), text: "\u2190 Run" })),
    el("div", { class: "toolbar" }, el("label", {}, failedBox, " failed only")),
    errors,
    el("div", { class: "table-wrap" }, table),
    el("div", { class: "pager" }, prev, next, info),
  );
  async function load() {
    let page;
    try {
      page = await api("/api/runs/" + encodeURIComponent(runId) + "/samples", { failed: state.failed ? 1 : "", sort: state.sort, stage: state.stage, offset: state.offset, limit: state.limit });
    } catch (error) {
      clear(errors);
      errors.append(errorBox(error));
      return;
    }
    clear(errors);
    clear(table);
    const columns = ["name", "stage_name", "batch_name", "status", "end_reason", ...page.metric_keys.map((key) => "metrics." + key), "events"];
    const sortName = state.sort.replace(/^-/, "");
    const head = el("tr");
    for (const column of columns) {
      const th = el("th", { text: column });
      if (column !== "events") {
        th.classList.add("sortable");
        if (column === sortName) th.classList.add(state.sort.startsWith("-") ? "sorted-desc" : "sorted-asc");
        th.addEventListener("click", () => {
          state.sort = column === sortName && !state.sort.startsWith("-") ? "-" + column : column;
          state.offset = 0;
          load();
        });
      }
      head.append(th);
    }
    const body = el("tbody");
    for (const row of page.rows) {
      const tr = el("tr");
      for (const column of columns) {
        let value = column.startsWith("metrics.") ? row.metrics[column.slice(8)] : row[column];
        if (column === "events") value = (row.events || []).join("\n");
        const td = column === "status" ? el("td", {}, statusSpan(value ?? "")) : el("td", { class: typeof value === "number" ? "num" : "", text: fmtNumber(value) });
        tr.append(td);
      }
      body.append(tr);
    }
    table.append(el("thead", {}, head), body);
    info.textContent = `${page.total} samples` + (page.failed_count ? `, ${page.failed_count} failed` : "") + (page.total > state.limit ? `; showing ${state.offset + 1}\u2013${state.offset + page.rows.length}` : "");
    prev.disabled = state.offset === 0;
    next.disabled = state.offset + page.rows.length >= page.total;
  }
  failedBox.addEventListener("change", () => {
    state.failed = failedBox.checked;
    state.offset = 0;
    load();
  });
  prev.addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - state.limit);
    load();
  });
  next.addEventListener("click", () => {
    state.offset += state.limit;
    load();
  });
  await load();
}

// ---------------------------------------------------------------- compare view

const OVERLAY_COLORS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"];

async function showCompare(runIds) {
  clear(view);
  let comparison;
  try {
    comparison = await api("/api/compare", { runs: runIds.join(",") });
  } catch (error) {
    view.append(el("h1", { text: "Compare" }), errorBox(error));
    return;
  }
  const ids = comparison.run_ids;
  view.append(el("h1", { text: `Compare ${ids.length} runs` }), el("div", { class: "tabs" }, el("a", { href: "#/", text: "\u2190 Runs" }), ...ids.map((id) => el("a", { href: runHref(id), text: id }))));
  const header = ["stage", "metric", ...ids.flatMap((id, index) => (index === 0 ? [id] : [id, "\u0394"]))];
  const rows = comparison.metrics.map((metric) => {
    const cells = [metric.stage_name || "", metric.metric_key];
    metric.values.forEach((value, index) => {
      cells.push(fmtNumber(value));
      if (index > 0) {
        const delta = metric.deltas[index];
        cells.push(el("span", { class: delta > 0 ? "delta-pos" : delta < 0 ? "delta-neg" : "", text: delta === null ? "" : (delta > 0 ? "+" : "") + fmtNumber(delta) }));
      }
    });
    return cells;
  });
  view.append(el("h2", { text: "Metrics" }), simpleTable(header, rows, "compare-metrics"));
  const differing = (fieldsList, id) => simpleTable(["field", ...ids], fieldsList.map((field) => [field.field, ...field.values.map((value) => (typeof value === "object" && value !== null ? JSON.stringify(value) : value === null ? "" : String(value)))]), id);
  view.append(el("h2", { text: "Params that differ" }), comparison.params.length ? differing(comparison.params, "compare-params") : el("p", { class: "muted", text: "none" }));
  if (comparison.environment.length) view.append(el("h2", { text: "Environment that differs" }), differing(comparison.environment, "compare-environment"));
  const charts = el("div", { class: "charts", id: "compare-charts" });
  view.append(el("h2", { text: "Series" }), charts);
  for (const overlay of comparison.series.slice(0, 24)) {
    const card = el("div", { class: "chart" }, el("h3", { text: (overlay.stage ? overlay.stage + " / " : "") + overlay.key }));
    charts.append(card);
    const width = Math.max(300, card.clientWidth - 12);
    const fetched = await Promise.all(
      overlay.run_ids.map((id) => api("/api/runs/" + encodeURIComponent(id) + "/series", { key: overlay.key, stage: overlay.stage || "", x: "step", width }).catch(() => null)),
    );
    const present = fetched.map((data, index) => [data, overlay.run_ids[index]]).filter(([data]) => data);
    if (!present.length) continue;
    const joined = uPlot.join(present.map(([data]) => [data.xs, data.ys]));
    const series = [{ label: "step" }, ...present.map(([, id], index) => ({ label: id, stroke: OVERLAY_COLORS[index % OVERLAY_COLORS.length], width: 1, spanGaps: true }))];
    new uPlot({ width, height: 240, series, scales: { x: { time: false } } }, joined, card);
  }
  live.close();
}

// ---------------------------------------------------------------- routing

async function route() {
  const hash = location.hash || "#/";
  const [path, search] = hash.slice(1).split("?");
  const query = new URLSearchParams(search || "");
  activeCharts.forEach((chart) => chart.destroy());
  activeCharts = [];
  const runMatch = path.match(/^\/run\/([^/]+)(\/samples)?$/);
  let runId = null;
  if (runMatch) {
    try {
      runId = decodeURIComponent(runMatch[1]);
    } catch {
      runId = null; // a hash mangled by hand or by a chat client: show the runs table rather than nothing
    }
  }
  if (runMatch && runId !== null) {
    live.close();
    if (runMatch[2]) await showSamples(runId, query);
    else await showRun(runId);
  } else if (path === "/compare") {
    await showCompare(query.getAll("run"));
  } else {
    await showRuns();
  }
  document.body.dataset.ready = hash;
}

window.addEventListener("hashchange", route);
window.addEventListener("load", route);
