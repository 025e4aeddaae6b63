// Orchard's dashboard: plain JS, no build step. Each page is a server-rendered shell with
// `data-page`; this module fills it from the public API (`/api/external/v1`), authenticated by
// the session cookie, and keeps it live from the event stream (EventSource reconnects by
// itself and sends `Last-Event-ID`, so nothing is missed and nothing polls).

const API = "/api/external/v1";
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
const CSRF = meta("csrf-token");
const ADMIN = meta("orchard-admin") === "true";
const STATUSES = ["created", "validating", "validated", "booting", "rendering", "suspended", "finalizing",
  "completed", "failed", "canceled"];

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One call to the API. State changes carry the session's CSRF token; a lost session goes
// back to the login page.
async function api(path, { method = "GET", body, text = false } = {}) {
  const headers = {};
  if (method !== "GET") headers["X-Orchard-CSRF"] = CSRF;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(API + path, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 401) {
    location.assign("/login");
    throw new ApiError(401, "unauthorized", "the session ended");
  }
  if (!response.ok) {
    const error = await response.json().catch(() => null);
    throw new ApiError(response.status, error?.error?.code ?? "error", error?.error?.message ?? response.statusText);
  }
  if (response.status === 204) return null;
  return text ? response.text() : response.json();
}

// A DOM element: h("a", {href: "/"}, "text", child, …). `on*` attributes are listeners.
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// Replaces an element's children; arrays are flattened, absent ones (null, false) left out.
function fill(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((it) => it !== undefined && it !== null && it !== false));
}

const main = document.getElementById("main");
const live = document.getElementById("live");

// Replaces the page's content (keeping its heading).
function render(title, ...children) {
  fill(main, h("h1", {}, title), ...children);
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

function bar(percent, label, big = false) {
  const fill = h("span");
  fill.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  return h("div", {
    class: big ? "bar big" : "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": String(Math.round(percent)), "aria-label": label,
  }, fill);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(seconds < 1 ? 2 : 1)}s`;
  seconds = Math.round(seconds);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return h("time", { datetime: iso, title: date.toLocaleString() }, date.toLocaleString());
}

// Ids are UUIDv7: their first digits are a time shared by ids made together, their last are
// random; the end tells them apart.
const short = (id) => (id ? String(id).slice(-8) : "—");

// Frames of range strings ("1-250x5", "7") as numbers.
function framesOf(ranges) {
  const frames = [];
  for (const range of ranges ?? []) {
    const match = /^\s*(-?\d+)(?:\s*-\s*(-?\d+)(?:\s*x\s*(\d+))?)?\s*$/.exec(range);
    if (!match) continue;
    const start = Number(match[1]);
    const end = match[2] === undefined ? start : Number(match[2]);
    const step = match[3] === undefined ? 1 : Math.max(1, Number(match[3]));
    for (let frame = start; frame <= end && frames.length < 100000; frame += step) frames.push(frame);
  }
  return frames;
}

// The frame number of an output file name: its last run of digits (`0007.png`,
// `shot_0007.exr`, a view's `eye_0007_L.png`).
function frameOfFile(name) {
  const match = /(\d+)(?!.*\d)/.exec(name ?? "");
  return match ? Number(match[1]) : null;
}

function sceneName(job) {
  return job.sceneFile?.fileName ?? job.sceneFile?.name ?? job.analysis?.fileName ?? short(job.id);
}

// ---------------------------------------------------------------------------------------
// The event stream: one EventSource per page, shared by its listeners.

const listeners = new Set();
function onEvents(listener) {
  listeners.add(listener);
}

function connectEvents() {
  let source = openEvents();
  // A page kept for going back (the back/forward cache) would keep its stream open, and a
  // browser opens only a few connections to one server: close it on leaving, open it again
  // on coming back.
  addEventListener("pagehide", () => source.close());
  addEventListener("pageshow", (event) => {
    if (event.persisted) source = openEvents();
  });
}

function openEvents() {
  const source = new EventSource(API + "/events");
  source.onopen = () => {
    live.textContent = "live";
    live.className = "live on";
  };
  source.onerror = () => {
    // EventSource reconnects by itself, sending Last-Event-ID.
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
  source.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    for (const listener of listeners) listener(event);
  };
  return source;
}

// Calls `task` at most once per `ms` while events keep coming: the first event schedules a
// run, the events before it are folded into it, an event after it schedules the next.
function coalesce(task, ms = 300) {
  let timer = null;
  return () => {
    if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        task();
      }, ms);
    }
  };
}

// `load` run one at a time: a call during a run makes one more run after it, so that the
// last event's state is always the one shown.
function oneAtATime(load) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await load();
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
  return run;
}

// Calls `task` once, `ms` after the last of a burst of events.
function afterQuiet(task, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(task, ms);
  };
}

function problem(error) {
  return h("p", { class: "problem", role: "alert" }, error instanceof Error ? error.message : String(error));
}

// ---------------------------------------------------------------------------------------
// Job actions, shared by the list (on a selection) and the job page.

const ACTIONS = [
  { name: "cancel", label: "Cancel", call: (id) => api(`/jobs/${id}/cancel`, { method: "POST" }) },
  { name: "suspend", label: "Suspend", call: (id) => api(`/jobs/${id}/suspend`, { method: "POST" }) },
  { name: "resume", label: "Resume", call: (id) => api(`/jobs/${id}/resume`, { method: "POST" }) },
  { name: "retry", label: "Retry", call: (id) => api(`/jobs/${id}/retry`, { method: "POST" }) },
  { name: "delete", label: "Delete", danger: true, call: (id) => api(`/jobs/${id}`, { method: "DELETE" }) },
];

// Runs `action` on each id; returns the refusals, one line each.
async function runAction(call, ids) {
  const refusals = [];
  for (const id of ids) {
    try {
      await call(id);
    } catch (error) {
      refusals.push(`${short(id)}: ${error.message}`);
    }
  }
  return refusals;
}

function actionBar(selected, done, status) {
  const priority = h("input", { id: "priority", type: "number", min: "0", max: "100", value: "50" });
  const buttons = ACTIONS.map((action) =>
    h("button", {
      type: "button", class: action.danger ? "danger" : "", "data-action": action.name,
      onclick: async () => {
        const ids = selected();
        if (ids.length === 0) return say(status, "Select jobs first.");
        if (action.name === "delete" && !confirm(`Delete ${ids.length} job(s) and their files?`)) return;
        say(status, `${action.label}: ${ids.length} job(s)…`);
        const refusals = await runAction(action.call, ids);
        say(status, refusals.length ? `${action.label} refused for ${refusals.join("; ")}` : `${action.label}: done.`);
        done(action.name);
      },
    }, action.label));
  const setPriority = h("button", {
    type: "button", "data-action": "priority",
    onclick: async () => {
      const ids = selected();
      if (ids.length === 0) return say(status, "Select jobs first.");
      const value = Number(priority.value);
      const refusals = await runAction((id) => api(`/jobs/${id}`, { method: "PATCH", body: { priority: value } }), ids);
      say(status, refusals.length ? `Priority refused for ${refusals.join("; ")}` : `Priority set to ${value}.`);
      done("priority");
    },
  }, "Set priority");
  return h("div", { class: "toolbar", role: "group", "aria-label": "Actions" }, buttons,
    h("span", { class: "field" }, h("label", { for: "priority" }, "Priority (0–100)"), priority), setPriority);
}

function say(status, text) {
  status.textContent = text;
}

// ---------------------------------------------------------------------------------------
// Jobs: the list, filtered and paged by the API, live.

async function jobsPage() {
  const params = new URLSearchParams(location.search);
  const state = {
    page: Number(params.get("page") ?? 1) || 1,
    status: params.get("status") ?? "",
    workspace: params.get("workspace") ?? "",
  };
  const pageSize = 25;
  const selection = new Set();
  const rows = new Map();
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite", id: "action-status" });

  const statusFilter = h("select", { id: "filter-status" },
    h("option", { value: "" }, "every status"), STATUSES.map((it) => h("option", { value: it }, it)));
  statusFilter.value = state.status;
  const workspaceFilter = h("input", {
    id: "filter-workspace", placeholder: "workspace id", value: state.workspace, list: "workspaces", size: "36",
  });
  const workspaces = h("datalist", { id: "workspaces" });
  const filters = h("form", {
    class: "toolbar", role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      state.status = statusFilter.value;
      state.workspace = workspaceFilter.value.trim();
      state.page = 1;
      load();
    },
  },
  h("span", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusFilter),
  ADMIN ? h("span", { class: "field" }, h("label", { for: "filter-workspace" }, "Workspace"), workspaceFilter, workspaces) : null,
  h("button", { type: "submit" }, "Filter"));

  const selectAll = h("input", { type: "checkbox", id: "select-all", "aria-label": "Select every job on this page" });
  const tbody = h("tbody");
  const pager = h("nav", { class: "toolbar", "aria-label": "Pages" });
  const table = h("div", { class: "table-wrap" }, h("table", { id: "jobs" },
    h("thead", {}, h("tr", {},
      h("th", {}, selectAll), h("th", {}, h("span", { class: "hide-narrow" }, "Preview")), h("th", {}, "Job"),
      h("th", {}, "Status"), h("th", {}, "Progress"), h("th", { class: "num" }, "Frames"),
      h("th", { class: "num" }, "ETA"), h("th", { class: "hide-narrow" }, "Submitted by"),
      ADMIN ? h("th", { class: "hide-narrow" }, "Workspace") : null,
      h("th", { class: "num" }, "Priority"), h("th", { class: "hide-narrow" }, "Created"))),
    tbody));
  selectAll.addEventListener("change", () => {
    for (const [id, row] of rows) {
      row.check.checked = selectAll.checked;
      toggle(id, row, selectAll.checked);
    }
  });
  function toggle(id, row, on) {
    if (on) selection.add(id);
    else selection.delete(id);
    row.tr.classList.toggle("selected", on);
  }

  render("Jobs", filters,
    actionBar(() => [...selection], () => load(), status), status, table, pager,
    h("p", {}, h("a", { class: "button primary", href: "/submit" }, "Submit a render")));

  function progressCells(job, progress) {
    const total = progress?.framesTotal ?? framesOf(job.finalConfig?.frameRanges).length;
    let done = progress?.framesDone ?? (job.status === "completed" ? total : null);
    const percent = progress?.percent ?? (job.status === "completed" ? 100 : 0);
    const label = `Progress of ${sceneName(job)}`;
    return {
      bar: bar(percent, label),
      frames: total ? `${done ?? "—"} / ${total}` : "—",
      eta: progress ? duration(progress.etaSeconds) : "—",
    };
  }

  function row(job, progress) {
    const check = h("input", { type: "checkbox", "aria-label": `Select ${sceneName(job)} (${short(job.id)})` });
    const cells = progressCells(job, progress);
    const barCell = h("td", {}, cells.bar);
    const framesCell = h("td", { class: "num" }, cells.frames);
    const etaCell = h("td", { class: "num" }, cells.eta);
    const statusCell = h("td", {}, badge(job.status));
    const tr = h("tr", { dataset: { jobId: job.id, status: job.status } },
      h("td", {}, check),
      h("td", { class: "hide-narrow" }, job.previewUrl ? h("img", { class: "thumb", src: job.previewUrl, alt: "", loading: "lazy" }) : null),
      h("td", {}, h("a", { href: `/jobs/${job.id}` }, sceneName(job)), " ", h("small", { class: "muted" }, short(job.id))),
      statusCell, barCell, framesCell, etaCell,
      h("td", { class: "hide-narrow" }, h("code", { title: job.userId }, short(job.userId))),
      ADMIN ? h("td", { class: "hide-narrow" }, h("code", { title: job.workspaceId }, short(job.workspaceId))) : null,
      h("td", { class: "num priority" }, String(job.priority ?? 50)),
      h("td", { class: "hide-narrow" }, when(job.createdAt)));
    const entry = { tr, check, job, barCell, framesCell, etaCell, statusCell };
    check.addEventListener("change", () => toggle(job.id, entry, check.checked));
    return entry;
  }

  const load = oneAtATime(loadList);
  async function loadList() {
    try {
      const query = new URLSearchParams({ page: state.page, pageSize });
      if (state.status) query.set("status", state.status);
      if (state.workspace) query.set("workspace", state.workspace);
      history.replaceState(null, "", `/?${query}`);
      let list;
      try {
        list = await api(`/jobs?${query}`);
      } catch (error) {
        if (error.code === "page_not_found" && state.page > 1) {
          state.page = 1;
          return loadList();
        }
        throw error;
      }
      const progress = new Map((await api("/jobs/progress")).map((it) => [it.jobId, it]));
      rows.clear();
      fill(tbody, );
      for (const job of list.jobs) {
        const entry = row(job, progress.get(job.id));
        if (selection.has(job.id)) {
          entry.check.checked = true;
          entry.tr.classList.add("selected");
        }
        rows.set(job.id, entry);
        tbody.append(entry.tr);
        if (ADMIN && ![...workspaces.options].some((it) => it.value === job.workspaceId)) {
          workspaces.append(h("option", { value: job.workspaceId }));
        }
      }
      for (const id of [...selection]) if (!rows.has(id)) selection.delete(id);
      if (list.jobs.length === 0) tbody.append(h("tr", {}, h("td", { colspan: "11", class: "muted" }, "No jobs.")));
      const { page, totalPages, total } = list.pagination;
      fill(pager, 
        h("button", { type: "button", disabled: page <= 1, onclick: () => { state.page = page - 1; load(); } }, "← Newer"),
        h("span", {}, `Page ${page} of ${Math.max(1, totalPages)} · ${total} jobs`),
        h("button", { type: "button", disabled: page >= totalPages, onclick: () => { state.page = page + 1; load(); } }, "Older →"));
    } catch (error) {
      say(status, error.message);
    }
  }

  const reload = coalesce(load, 400);
  onEvents((event) => {
    const entry = rows.get(event.jobId);
    if (event.type === "progress" && entry) {
      const cells = progressCells(entry.job, event);
      fill(entry.barCell, cells.bar);
      entry.framesCell.textContent = cells.frames;
      entry.etaCell.textContent = cells.eta;
      if (event.status && event.status !== entry.job.status) reload();
    } else if (event.type !== "progress" && event.type !== "preview") {
      reload();
    } else if (event.type === "preview" && entry) {
      reload();
    }
  });
  await load();
}

// ---------------------------------------------------------------------------------------
// A job: everything about it, live.

async function jobPage() {
  const id = document.body.dataset.jobId;
  const view = {
    header: h("div", { id: "job-header" }),
    status: h("p", { class: "muted", role: "status", "aria-live": "polite", id: "action-status" }),
    progress: h("section", { class: "panel", id: "job-progress", "aria-label": "Progress" }),
    preview: h("section", { class: "panel", id: "job-preview", "aria-label": "Latest preview" }),
    frames: h("section", { class: "panel", id: "frames-panel", "aria-labelledby": "frames-title" }),
    analysis: h("section", { class: "panel", id: "analysis", "aria-labelledby": "analysis-title" }),
    tasks: h("section", { class: "panel", id: "tasks", "aria-labelledby": "tasks-title" }),
    downloads: h("section", { class: "panel", id: "downloads", "aria-labelledby": "downloads-title" }),
  };
  const dialog = h("dialog", { id: "frame-dialog", "aria-label": "Frame" });
  const hoverImage = h("img", { class: "hover-thumb", alt: "", hidden: true });
  let job = null;
  let openLog = null;

  render("Job", view.header,
    actionBar(() => [id], (name) => (name === "delete" ? location.assign("/") : load()), view.status),
    view.status, view.progress, h("div", { class: "grid2" }, view.preview, view.frames),
    view.tasks, view.downloads, view.analysis, dialog, hoverImage);

  const load = oneAtATime(loadJob);
  async function loadJob() {
    try {
      const [envelope, progressList, tasks, downloads] = await Promise.all([
        api(`/jobs/${id}`), api(`/jobs/${id}/progress`), api(`/jobs/${id}/tasks`), api(`/jobs/${id}/downloads`),
      ]);
      job = envelope.data;
      const progress = progressList[0] ?? null;
      document.title = `${sceneName(job)} · Orchard`;
      main.querySelector("h1").textContent = sceneName(job);
      drawHeader(job);
      drawProgress(job, progress, tasks);
      drawPreview(job);
      drawFrames(job, tasks, downloads);
      drawTasks(tasks);
      drawDownloads(downloads);
      drawAnalysis(job);
      if (openLog) openLog.refresh();
    } catch (error) {
      if (error.status === 404) render("Job not found", problem("No such job (or not one of this key's workspace)."));
      else say(view.status, error.message);
    }
  }

  function drawHeader(job) {
    const reasons = [];
    if (job.waitingReason) reasons.push(h("p", { class: "notice", id: "waiting-reason" }, "Waiting: ", job.waitingReason));
    if (job.failedReason) {
      reasons.push(h("div", { class: "problem", id: "failed-reason", role: "alert" },
        h("strong", {}, `Failed (${job.failedReason.type ?? job.failedReason.name ?? "error"}): `),
        job.failedReason.message ?? job.failedReason.name ?? ""));
    }
    for (const warning of job.outputWarnings ?? []) reasons.push(h("p", { class: "notice" }, warning.message));
    fill(view.header, 
      h("p", {}, badge(job.status), " ", h("span", { id: "job-status", "data-status": job.status }, job.status),
        " · priority ", String(job.priority ?? 50), " · ", h("code", {}, job.id), " · submitted by ",
        h("code", { title: job.userId }, short(job.userId)), " · ", when(job.createdAt)),
      reasons);
  }

  function drawProgress(job, progress, tasks) {
    const total = progress?.framesTotal ?? framesOf(job.finalConfig?.frameRanges).length;
    const done = progress?.framesDone ?? (job.status === "completed" ? total : tasksDone(tasks));
    const percent = progress?.percent ?? (job.status === "completed" ? 100 : total ? (100 * done) / total : 0);
    fill(view.progress, 
      bar(percent, "Job progress", true),
      h("p", {}, h("strong", { id: "frames-done" }, `${done} / ${total}`), " frames · ",
        h("span", { id: "percent" }, `${Math.round(percent)} %`), " · ETA ", duration(progress?.etaSeconds),
        " · normalizedSeconds ", h("span", { id: "normalized-seconds" }, (job.normalizedSeconds ?? 0).toFixed(2))));
  }

  function tasksDone(tasks) {
    return tasks.filter((it) => it.status === "completed").reduce((sum, it) => sum + framesOf(it.frames).length, 0);
  }

  function drawPreview(job) {
    fill(view.preview, h("h2", {}, "Latest preview"),
      job.previewUrl ? h("img", { class: "preview", id: "preview-image", src: job.previewUrl, alt: `Latest preview of ${sceneName(job)}` })
        : h("p", { class: "muted" }, "No frame yet."));
  }

  function drawFrames(job, tasks, downloads) {
    const outputs = new Map();
    for (const output of downloads.frameOutputs ?? []) {
      const frame = frameOfFile(output.fileName);
      if (frame !== null) outputs.set(frame, output);
    }
    const states = new Map();
    for (const frame of framesOf(job.finalConfig?.frameRanges)) states.set(frame, "queued");
    for (const task of [...tasks].sort((a, b) => a.seq - b.seq)) {
      // A task stopped by its job's failure after failing counts as failed, not canceled.
      const stopped = task.status === "canceled" && task.failures > 0 ? "failed" : task.status;
      const state = { completed: "done", running: "running", failed: "failed", canceled: "canceled" }[stopped] ?? "queued";
      for (const frame of framesOf(task.frames)) states.set(frame, state);
    }
    for (const frame of outputs.keys()) states.set(frame, "done");
    const grid = h("div", { class: "frames", id: "frame-grid", role: "list" });
    for (const frame of [...states.keys()].sort((a, b) => a - b)) {
      const state = states.get(frame);
      const output = outputs.get(frame);
      const cell = h("button", {
        type: "button", class: `frame ${state}`, role: "listitem", "data-frame": String(frame), "data-state": state,
        "aria-label": `Frame ${frame}: ${state}${output ? ", open" : ""}`, disabled: !output,
        onclick: () => openFrame(frame, output),
        onmouseenter: (event) => showThumb(event, output), onmouseleave: hideThumb,
        onfocus: (event) => showThumb(event, output), onblur: hideThumb,
      }, String(frame));
      grid.append(cell);
    }
    fill(view.frames, h("h2", { id: "frames-title" }, "Frames"),
      h("div", { class: "legend", "aria-hidden": "true" },
        h("span", { class: "done" }, "done"), h("span", { class: "running" }, "rendering"),
        h("span", {}, "queued"), h("span", { class: "failed" }, "failed")),
      states.size ? grid : h("p", { class: "muted" }, "Frames appear once the render starts."));
  }

  function showThumb(event, output) {
    if (!output) return;
    const rect = event.target.getBoundingClientRect();
    hoverImage.src = output.url;
    hoverImage.style.left = `${Math.min(rect.left, innerWidth - 230)}px`;
    hoverImage.style.top = `${rect.bottom + 6}px`;
    hoverImage.hidden = false;
  }
  function hideThumb() {
    hoverImage.hidden = true;
  }

  function openFrame(frame, output) {
    if (!output) return;
    hideThumb();
    fill(dialog, 
      h("h2", {}, `Frame ${frame}`),
      h("img", { id: "frame-full", src: output.url, alt: `Frame ${frame}, full size` }),
      h("p", {}, h("a", { href: output.url, target: "_blank", rel: "noopener" }, `Open ${output.fileName}`), " ",
        h("button", { type: "button", id: "close-frame", onclick: () => dialog.close() }, "Close")));
    dialog.showModal();
  }

  function drawTasks(tasks) {
    const rows = tasks.map((task) => {
      const seconds = task.renderSeconds ?? (task.startedAt && task.finishedAt
        ? (new Date(task.finishedAt) - new Date(task.startedAt)) / 1000 : null);
      return h("tr", { dataset: { taskId: task.id, status: task.status } },
        h("td", { class: "num" }, String(task.seq)), h("td", {}, task.frames.join(", ")), h("td", {}, badge(task.status)),
        h("td", { class: "num" }, String(task.attempt)), h("td", { class: "num" }, String(task.failures)),
        h("td", {}, task.workerName ?? short(task.workerId)), h("td", {}, task.blenderVersion ?? "—"),
        h("td", { class: "num" }, duration(seconds)),
        h("td", {}, h("button", {
          type: "button", class: "log-button", "aria-label": `Log of task ${task.seq}`,
          onclick: () => showLog(task),
        }, "Log")));
    });
    const failures = tasks.flatMap((task) => (task.failedAttempts ?? []).map((it) => ({ task, ...it })));
    fill(view.tasks, h("h2", { id: "tasks-title" }, "Tasks"),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { class: "num" }, "#"), h("th", {}, "Frames"), h("th", {}, "Status"),
          h("th", { class: "num" }, "Attempt"), h("th", { class: "num" }, "Failures"), h("th", {}, "Worker"),
          h("th", {}, "Blender"), h("th", { class: "num" }, "Duration"), h("th", {}, "Log"))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "9", class: "muted" }, "No tasks yet."))))),
      failures.length ? h("details", {}, h("summary", {}, `${failures.length} failed attempt(s)`),
        failures.map((it) => h("div", { class: "problem" },
          h("strong", {}, `Task ${it.task.seq}, attempt ${it.attempt}: `), it.error ?? it.message ?? ""))) : null,
      openLog ? openLog.element : null);
  }

  // The log viewer: the attempt's log, fetched again on the job's events while the task runs.
  function showLog(task) {
    const pre = h("pre", { class: "log", id: "task-log", tabindex: "0", "aria-label": `Log of task ${task.seq}` }, "Loading…");
    const attempts = h("select", { id: "log-attempt", onchange: () => refresh() },
      Array.from({ length: Math.max(1, task.attempt) }, (_, index) => index + 1).reverse()
        .map((attempt) => h("option", { value: String(attempt) }, `attempt ${attempt}`)));
    const element = h("div", { id: "log-viewer" }, h("h2", {}, `Log of task ${task.seq} (frames ${task.frames.join(", ")})`),
      h("span", { class: "field" }, h("label", { for: "log-attempt" }, "Attempt"), attempts), pre,
      h("button", { type: "button", onclick: () => { openLog = null; element.remove(); } }, "Close log"));
    const refresh = async () => {
      try {
        const text = await api(`/jobs/${id}/tasks/${task.id}/log?attempt=${attempts.value}`, { text: true });
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
        pre.textContent = text || "(empty)";
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      } catch (error) {
        pre.textContent = error.message;
      }
    };
    openLog = { element, refresh };
    view.tasks.append(element);
    refresh();
    pre.focus();
  }

  function drawDownloads(downloads) {
    const link = (url, label, linkId) => (url ? h("li", {}, h("a", { href: url, id: linkId, download: "" }, label)) : null);
    const t = downloads.transforms ?? {};
    const items = [
      link(t.framesZip, "All frames (zip)", "download-zip"),
      link(t.compositeNodesZip, "Compositor outputs (zip)", "download-composite"),
      link(t.video?.url, `Video (${t.video?.fileName ?? "mp4"})`, "download-video"),
      t.video?.error ? h("li", { class: "missing" }, `No video: ${t.video.error}`) : null,
      link(t.contactSheet?.url, "Contact sheet", "download-contact-sheet"),
    ].filter(Boolean);
    const frames = (downloads.frameOutputs ?? []).map((it) => h("li", {}, h("a", { href: it.url }, it.fileName)));
    const composites = (downloads.compositeNodeOutputs ?? []).map((it) =>
      h("li", {}, h("a", { href: it.url }, `${it.compositeNodeName}/${it.relativePath || it.fileName}`)));
    fill(view.downloads, h("h2", { id: "downloads-title" }, "Downloads"),
      items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "Downloads appear when the job completes."),
      frames.length ? h("details", {}, h("summary", {}, `${frames.length} frame file(s)`), h("ul", {}, frames)) : null,
      composites.length ? h("details", {}, h("summary", {}, `${composites.length} compositor file(s)`), h("ul", {}, composites)) : null);
  }

  function drawAnalysis(job) {
    const analysis = job.analysis ?? {};
    if (!analysis.scenes) {
      fill(view.analysis, h("h2", { id: "analysis-title" }, "Analysis"), h("p", { class: "muted" }, "Not analysed yet."));
      return;
    }
    fill(view.analysis, h("h2", { id: "analysis-title" }, "Analysis"), analysisView(analysis, job.finalConfig));
  }

  // A status change or a new frame redraws everything within a moment; a progress event alone
  // (twice a second while a frame renders) moves the bar at once and lets the grid and the
  // log follow within two seconds, instead of refetching the job on each.
  const reload = coalesce(load, 250);
  const follow = coalesce(load, 2000);
  let framesDone = null;
  onEvents((event) => {
    if (event.jobId !== id) return;
    if (event.type !== "progress" || !job) return reload();
    drawProgress(job, event, []);
    if (event.framesDone !== framesDone) {
      framesDone = event.framesDone;
      reload();
    } else {
      follow();
    }
  });
  await load();
}

// The analysis: file facts, scenes, detected config beside the final one, dependencies
// (missing ones marked), warnings.
function analysisView(analysis, finalConfig) {
  const active = analysis.scenes.find((it) => it.name === analysis.activeScene) ?? analysis.scenes[0];
  const detected = active?.renderConfig ?? {};
  const final = finalConfig && Object.keys(finalConfig).length ? finalConfig : null;
  const keys = [...new Set([...Object.keys(detected), ...Object.keys(final ?? {})])].filter((it) => it !== "outputSettings");
  const show = (value) => (value === undefined || value === null ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value));
  const configRows = keys.map((key) => {
    const changed = final && key in final && key in detected && show(final[key]) !== show(detected[key]);
    return h("tr", { class: changed ? "changed" : "" }, h("th", { scope: "row" }, key),
      h("td", {}, show(detected[key])), final ? h("td", {}, show(final[key])) : null);
  });
  const dependencies = analysis.dependencies ?? [];
  const missing = dependencies.filter((it) => it.status === "missing");
  return h("div", { id: "analysis-view" },
    h("p", {}, h("strong", {}, analysis.fileName ?? ""), ` · Blender ${analysis.blenderVersion ?? "?"} · `,
      `${analysis.compression ?? ""} · analysed in `, h("span", { id: "analysis-ms" }, `${analysis.durationMs ?? "?"} ms`)),
    h("h3", {}, "Scenes"),
    h("div", { class: "table-wrap" }, h("table", { id: "scenes" },
      h("thead", {}, h("tr", {}, h("th", {}, "Scene"), h("th", {}, "Frames"), h("th", {}, "Engine"), h("th", { class: "num" }, "Samples"),
        h("th", {}, "Resolution"), h("th", {}, "Camera"), h("th", {}, "Output"))),
      h("tbody", {}, analysis.scenes.map((scene) => h("tr", {},
        h("td", {}, scene.name, scene.name === analysis.activeScene ? " (active)" : ""),
        h("td", {}, `${scene.frameStart}–${scene.frameEnd}${scene.frameStep > 1 ? ` ×${scene.frameStep}` : ""}`),
        h("td", {}, scene.renderConfig?.renderEngine ?? "—"), h("td", { class: "num" }, show(scene.renderConfig?.sampleCount)),
        h("td", {}, show(scene.renderConfig?.resolution)), h("td", {}, scene.camera ?? "—"), h("td", {}, scene.outputPath ?? "—")))))),
    h("h3", {}, final ? "Detected vs final configuration" : "Detected configuration"),
    h("div", { class: "table-wrap" }, h("table", { id: "config-compare" },
      h("thead", {}, h("tr", {}, h("th", {}, "Setting"), h("th", {}, "Detected"), final ? h("th", {}, "Final") : null)),
      h("tbody", {}, configRows))),
    h("h3", {}, `Dependencies (${dependencies.length}, ${missing.length} missing)`),
    dependencies.length ? h("ul", { id: "dependencies" }, dependencies.map((it) =>
      h("li", { class: it.status === "missing" ? "missing" : "" }, `${it.kind}: `, h("code", {}, it.path), ` — ${it.status}`)))
      : h("p", { class: "muted" }, "None."),
    h("h3", {}, "Warnings"),
    (analysis.warnings ?? []).length ? h("ul", { id: "warnings" }, analysis.warnings.map((it) =>
      h("li", {}, h("code", {}, it.code), " ", it.message))) : h("p", { class: "muted" }, "None."));
}

// ---------------------------------------------------------------------------------------
// Submit: upload, create, validate (the analysis in milliseconds), choose, render — the
// calls any client makes.

async function submitPage() {
  const input = h("input", { type: "file", id: "scene-file", accept: ".blend,.zip", "aria-describedby": "drop-help" });
  const drop = h("div", { class: "drop", id: "drop" },
    h("p", { id: "drop-help" }, "Drop a .blend or a .zip project here, or choose one:"),
    h("label", { for: "scene-file" }, "Scene file"), input);
  const status = h("p", { role: "status", "aria-live": "polite", id: "submit-status", class: "muted" });
  const result = h("div", { id: "submit-result" });
  render("Submit a render", drop, status, result);

  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer?.files?.[0];
    if (file) submit(file);
  });
  input.addEventListener("change", () => input.files[0] && submit(input.files[0]));

  async function submit(file) {
    fill(result, );
    const fileType = file.name.toLowerCase().endsWith(".zip") ? "zip" : "blend";
    try {
      say(status, `Uploading ${file.name}…`);
      const upload = await api("/uploads", { method: "POST", body: { fileName: file.name, fileType } });
      const put = await fetch(upload.uploadUrl, { method: "PUT", body: file });
      if (!put.ok) throw new Error(`the upload was refused (${put.status})`);
      say(status, "Analysing…");
      const created = await api("/jobs", { method: "POST", body: { slug: upload.slug } });
      const job = await api(`/jobs/${created.id}/validate`, { method: "POST" });
      if (job.status === "failed") {
        say(status, "The scene cannot be rendered.");
        fill(result, problem(job.failedReason?.message ?? "validation failed"),
          h("a", { href: `/jobs/${job.id}` }, "Open the job"));
        return;
      }
      say(status, `Analysed in ${job.analysis?.durationMs ?? "?"} ms.`);
      fill(result, renderForm(job), h("section", { class: "panel" }, h("h2", {}, "Analysis"), analysisView(job.analysis, null)));
    } catch (error) {
      say(status, "");
      fill(result, problem(error));
    }
  }

  // The requestedRenderConfig form, each field defaulting to what the scene holds; only
  // what a person changed is sent (the rest is the scene's own).
  function renderForm(job) {
    const analysis = job.analysis;
    const scene = analysis.scenes.find((it) => it.name === analysis.activeScene) ?? analysis.scenes[0];
    const detected = scene.renderConfig ?? {};
    const range = `${scene.frameStart}-${scene.frameEnd}${scene.frameStep > 1 ? `x${scene.frameStep}` : ""}`;
    const fields = [];
    const field = (id, label, control) => {
      fields.push(h("span", { class: "field" }, h("label", { for: id }, label), control));
      return control;
    };
    const frames = field("frames", "Frames", h("input", { id: "frames", value: range, required: true, size: "14" }));
    const preset = field("color-preset", "Colour management",
      h("select", { id: "color-preset" }, h("option", { value: "default" }, "default"), h("option", { value: "aces" }, "aces")));
    const engine = field("engine", "Engine", h("select", { id: "engine" },
      ["CYCLES", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT", "BLENDER_WORKBENCH"].map((it) => h("option", { value: it, selected: it === detected.renderEngine }, it))));
    const samples = field("samples", "Samples", h("input", { id: "samples", type: "number", min: "1", value: detected.sampleCount ?? "" }));
    const width = field("width", "Width", h("input", { id: "width", type: "number", min: "1", value: detected.resolution?.[0] ?? "" }));
    const height = field("height", "Height", h("input", { id: "height", type: "number", min: "1", value: detected.resolution?.[1] ?? "" }));
    const percent = field("resolution-percentage", "Resolution %", h("input", { id: "resolution-percentage", type: "number", min: "1", max: "100", value: detected.resolutionPercentage ?? 100 }));
    const format = field("output-format", "Output format", h("select", { id: "output-format" },
      ["PNG", "JPEG", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "TIFF", "WEBP"].map((it) => h("option", { value: it, selected: it === detected.outputFormat }, it))));
    const denoise = field("denoising", "Denoising", h("input", { id: "denoising", type: "checkbox", checked: !!detected.denoisingEnabled }));
    const denoiser = field("denoiser", "Denoiser", h("select", { id: "denoiser" },
      ["", "OPENIMAGEDENOISE", "OPTIX"].map((it) => h("option", { value: it, selected: it === (detected.denoiserType ?? "") }, it || "(scene's)"))));
    const device = field("compute-device", "GPU backend", h("select", { id: "compute-device" },
      ["", "NONE", "CUDA", "OPTIX", "HIP", "ONEAPI", "METAL"].map((it) => h("option", { value: it }, it || "(scene's)"))));
    const fps = field("fps", "FPS", h("input", { id: "fps", type: "number", min: "1", step: "any", value: scene.fps ?? "" }));
    const ram = field("minimum-ram", "Minimum RAM (GiB)", h("input", { id: "minimum-ram", type: "number", min: "1", max: "4096" }));
    const chunk = field("chunk-size", "Frames per task", h("input", { id: "chunk-size", type: "number", min: "1" }));
    const blank = field("fail-on-blank", "Fail on blank frames", h("input", { id: "fail-on-blank", type: "checkbox" }));
    const video = field("video", "Video (MP4)", h("input", { id: "video", type: "checkbox" }));
    const priority = field("render-priority", "Priority", h("input", { id: "render-priority", type: "number", min: "0", max: "100", value: "50" }));
    const notes = field("notes", "Notes", h("input", { id: "notes", size: "24" }));
    const refusal = h("div", { role: "alert" });
    const form = h("form", {
      id: "render-form", class: "panel",
      onsubmit: async (event) => {
        event.preventDefault();
        const config = {
          colorManagementPreset: preset.value,
          frameRanges: frames.value.split(",").map((it) => it.trim()).filter(Boolean),
        };
        const number = (control) => (control.value === "" ? null : Number(control.value));
        if (engine.value !== detected.renderEngine) config.renderEngine = engine.value;
        if (number(samples) !== null && number(samples) !== detected.sampleCount) config.sampleCount = number(samples);
        const resolution = [number(width), number(height)];
        if (resolution.every((it) => it !== null) && String(resolution) !== String(detected.resolution ?? [])) config.resolution = resolution;
        if (number(percent) !== (detected.resolutionPercentage ?? 100)) config.resolutionPercentage = number(percent);
        if (format.value !== detected.outputFormat) config.outputFormat = format.value;
        if (denoise.checked !== !!detected.denoisingEnabled) config.denoisingEnabled = denoise.checked;
        if (denoiser.value && denoiser.value !== detected.denoiserType) config.denoiserType = denoiser.value;
        if (device.value) config.computeDeviceType = device.value;
        if (number(fps) !== null && number(fps) !== scene.fps) config.fps = number(fps);
        if (number(ram) !== null) config.minimumRam = number(ram);
        if (number(chunk) !== null) config.chunkSize = number(chunk);
        if (blank.checked) config.failOnBlank = true;
        if (video.checked) config.video = true;
        if (number(priority) !== 50) config.priority = number(priority);
        if (notes.value.trim()) config.notes = notes.value.trim();
        try {
          await api(`/jobs/${job.id}/render`, { method: "POST", body: { requestedRenderConfig: config } });
          location.assign(`/jobs/${job.id}`);
        } catch (error) {
          fill(refusal, problem(error));
        }
      },
    }, h("h2", {}, `Render ${analysis.fileName} (scene ${scene.name})`), fields, refusal,
    h("p", {}, h("button", { type: "submit", class: "primary", id: "render-button" }, "Render")));
    return form;
  }
}

// ---------------------------------------------------------------------------------------
// Workers: the render nodes, refreshed when the farm's jobs move.

async function workersPage() {
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const tbody = h("tbody");
  render("Workers", status, h("div", { class: "table-wrap" }, h("table", { id: "workers" },
    h("thead", {}, h("tr", {}, h("th", {}, "Worker"), h("th", {}, "Status"), h("th", {}, "Current work"),
      h("th", {}, "Blender"), h("th", {}, "Capabilities"), h("th", { class: "num" }, "Speed"),
      h("th", {}, "Last seen"), ADMIN ? h("th", {}, "Drain") : null)),
    tbody)));

  const load = oneAtATime(loadWorkers);
  async function loadWorkers() {
    try {
      const { workers } = await api("/workers");
      fill(tbody, ...workers.map((worker) => {
        const task = worker.currentTask;
        const work = task
          ? h("span", {}, task.jobId ? h("a", { href: `/jobs/${task.jobId}` }, `job ${short(task.jobId)}`) : "a job",
            ` · frames ${task.frames.join(", ")}`)
          : "—";
        const blenders = (worker.blenders ?? []).map((it) => {
          const options = [it.oidn ? "OIDN" : "", it.eevee ? "EEVEE" : "", ...(it.gpuBackends ?? [])].filter(Boolean);
          return options.length ? `${it.version} (${options.join(", ")})` : it.version;
        }).join("; ");
        const capabilities = [`${worker.cpuThreads} threads`, `${Number(worker.ramGib).toFixed(0)} GiB`,
          ...(worker.tags ?? []).map((it) => `#${it}`)].join(" · ");
        const drain = ADMIN ? h("td", {}, h("button", {
          type: "button", "aria-label": `${worker.draining ? "Undrain" : "Drain"} ${worker.name}`,
          onclick: async () => {
            try {
              await api(`/workers/${worker.id}/${worker.draining ? "undrain" : "drain"}`, { method: "POST" });
            } catch (error) {
              say(status, error.message);
            }
            load();
          },
        }, worker.draining ? "Undrain" : "Drain")) : null;
        return h("tr", { dataset: { workerId: worker.id, status: worker.status } },
          h("td", {}, worker.name), h("td", {}, badge(worker.status)), h("td", {}, work), h("td", {}, blenders || "—"),
          h("td", {}, capabilities), h("td", { class: "num", title: `measured ${worker.speedMeasured}` }, Number(worker.speedFactor).toFixed(2)),
          h("td", {}, when(worker.lastSeenAt)), drain);
      }));
      if (workers.length === 0) tbody.append(h("tr", {}, h("td", { colspan: "8", class: "muted" }, "No worker has registered.")));
      say(status, `${workers.length} worker(s)`);
    } catch (error) {
      say(status, error.message);
    }
  }

  // A worker's state follows its jobs': refresh on their events, and once more a little
  // after the last one (a worker turns idle just after its last task completes).
  const refresh = coalesce(load, 300);
  const settle = afterQuiet(load, 2500);
  onEvents(() => {
    refresh();
    settle();
  });
  await load();
}

// ---------------------------------------------------------------------------------------
// Farm: the queue, throughput, jobs by status, usage per workspace.

async function farmPage() {
  const stats = h("div", { class: "grid3", id: "farm-stats" });
  const byStatus = h("tbody");
  const usage = h("tbody");
  const note = h("p", { class: "muted" });
  render("Farm", stats,
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Jobs by status"), h("table", { id: "jobs-by-status" }, byStatus)),
      h("section", { class: "panel" }, h("h2", {}, "Usage by workspace (normalizedSeconds)"),
        h("table", { id: "usage" }, h("thead", {}, h("tr", {}, h("th", {}, "Workspace"), h("th", { class: "num" }, "Jobs"),
          h("th", { class: "num" }, "Frames"), h("th", { class: "num" }, "normalizedSeconds"))), usage), note)));

  const stat = (label, value, statId) => h("section", { class: "panel" }, h("div", { class: "muted" }, label), h("div", { class: "stat", id: statId }, value));
  // The hour's frames come with the usage (GET /usage), the other counters with `load`.
  const hourValue = h("div", { class: "stat", id: "frames-per-hour" }, "…");
  const hour = h("section", { class: "panel" }, h("div", { class: "muted" }, "Frames in the last hour"), hourValue);

  async function load() {
    try {
      const [progress, { workers }, counts] = await Promise.all([
        api("/jobs/progress"), api("/workers"),
        Promise.all(STATUSES.map((status) => api(`/jobs?status=${status}&pageSize=1`).then((it) => [status, it.pagination.total]))),
      ]);
      // Queue depth: frames not yet done of every job in flight; throughput: the frames that
      // finished in the last hour.
      const queued = progress.reduce((sum, it) => sum + Math.max(0, it.framesTotal - it.framesDone), 0);
      const busy = workers.filter((it) => it.status === "busy").length;
      fill(stats,
        stat("Frames queued", String(queued), "queue-depth"),
        hour,
        stat("Jobs in flight", String(progress.length), "jobs-in-flight"),
        stat("Workers busy", `${busy} / ${workers.length}`, "workers-busy"));
      fill(byStatus, ...counts.map(([status, total]) =>
        h("tr", {}, h("th", { scope: "row" }, h("a", { href: `/?status=${status}` }, status)), h("td", { class: "num" }, String(total)))));
    } catch (error) {
      note.textContent = error.message;
    }
  }

  // Usage per workspace over all its jobs, summed by the server (GET /usage).
  async function loadUsage() {
    const { workspaces, framesLastHour } = await api("/usage");
    hourValue.textContent = String(framesLastHour);
    fill(usage, ...workspaces.map((entry) =>
      h("tr", {}, h("td", {}, h("code", { title: entry.workspaceId }, short(entry.workspaceId))),
        h("td", { class: "num" }, String(entry.jobs)), h("td", { class: "num" }, String(entry.framesDone)),
        h("td", { class: "num" }, entry.normalizedSeconds.toFixed(1)))));
    note.textContent = `${workspaces.length} workspace${workspaces.length === 1 ? "" : "s"}, every job counted.`;
  }

  // Progress events come twice a second per rendering job: the counters follow within a few
  // seconds, the usage and the hour's frames only when a job changes status.
  const reloadCounters = coalesce(load, 3000);
  const reloadUsage = coalesce(() => loadUsage().catch((error) => (note.textContent = error.message)), 10000);
  onEvents((event) => {
    reloadCounters();
    if (event.type !== "progress" && event.type !== "preview") reloadUsage();
  });
  await Promise.all([load(), loadUsage()]);
}

// ---------------------------------------------------------------------------------------

const PAGES = { jobs: jobsPage, job: jobPage, submit: submitPage, workers: workersPage, farm: farmPage };
const page = PAGES[document.body.dataset.page];
if (page) {
  connectEvents();
  page().catch((error) => main.append(problem(error)));
}
