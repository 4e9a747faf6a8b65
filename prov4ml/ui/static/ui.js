/* prov4ml ui: SVG line plots fed by polling the run's metric files, zoomable graphs, sortable tables.
   No dependency: this file and runs.js (the runs tables' filter, columns and ticks) are all the script the pages load. */
(function () {
  "use strict";
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const SVGNS = "http://www.w3.org/2000/svg";
  const W = 480, H = 270, M = { l: 62, r: 14, t: 10, b: 40 };
  const POLL_MS = 1000;

  function svgEl(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    return String(+v.toPrecision(4));
  }

  function ticks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  // A path through at most ~2 points per pixel column: the first, min and max of each column keep spikes visible.
  function pathOf(xs, ys, sx, sy) {
    let d = "", col = null, lo = null, hi = null;
    const flush = () => { if (col !== null) d += "L" + col + "," + lo + "L" + col + "," + hi; };
    for (let i = 0; i < xs.length; i++) {
      if (ys[i] === null || !Number.isFinite(ys[i])) continue;
      const px = Math.round(sx(xs[i]) * 2) / 2, py = +sy(ys[i]).toFixed(1);
      if (d === "") { d = "M" + px + "," + py; col = px; lo = hi = py; continue; }
      if (px === col) { lo = Math.min(lo, py); hi = Math.max(hi, py); continue; }
      flush();
      d += "L" + px + "," + py; col = px; lo = hi = py;
    }
    flush();
    return d;
  }

  /* One plot: series keyed by a string, each {label, color, x, y, lo?, hi?}. x is the step, unless some
     series logs several points per step (or steps go back): then the plot draws by point order and says so. */
  class Plot {
    constructor(parent, title, id) {
      this.series = new Map();
      this.fig = document.createElement("figure");
      this.fig.className = "plot";
      if (id) this.fig.id = id;
      const cap = document.createElement("figcaption");
      cap.textContent = title;
      this.fig.appendChild(cap);
      this.svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, "data-points": "0" }, this.fig);
      this.note = document.createElement("div");
      this.note.className = "note";
      this.fig.appendChild(this.note);
      this.legend = document.createElement("div");
      this.legend.className = "legend";
      this.fig.appendChild(this.legend);
      parent.appendChild(this.fig);
    }

    set(key, s) { if (!s.color) s.color = PALETTE[this.series.size % PALETTE.length]; this.series.set(key, s); }

    render() {
      const all = [...this.series.values()];
      const byOrder = all.some(s => s.x.some((v, i) => i > 0 && !(v > s.x[i - 1])));
      let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity, points = 0;
      for (const s of all) {
        s.px = byOrder ? s.y.map((_, i) => i) : s.x;
        points += s.y.length;
        for (let i = 0; i < s.y.length; i++) {
          const ys = [s.y[i], s.lo ? s.lo[i] : null, s.hi ? s.hi[i] : null];
          for (const y of ys) if (y !== null && Number.isFinite(y)) { ymin = Math.min(ymin, y); ymax = Math.max(ymax, y); }
          if (s.px[i] !== null) { xmin = Math.min(xmin, s.px[i]); xmax = Math.max(xmax, s.px[i]); }
        }
      }
      while (this.svg.firstChild) this.svg.removeChild(this.svg.firstChild);
      this.svg.setAttribute("data-points", String(points));
      this.svg.setAttribute("data-series", String(all.length));
      this.svg.setAttribute("data-x", byOrder ? "order" : "step");
      this.note.textContent = byOrder ? "x: point order (several points share a step)" : "";
      if (!Number.isFinite(ymin)) {
        svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, this.svg).textContent = "no points yet";
        this.renderLegend(all);
        return;
      }
      if (xmax === xmin) { xmin -= 1; xmax += 1; }
      if (ymax === ymin) { const d = Math.abs(ymin) * 0.1 || 1; ymin -= d; ymax += d; }
      const pad = (ymax - ymin) * 0.05; ymin -= pad; ymax += pad;
      const sx = x => M.l + (x - xmin) / (xmax - xmin) * (W - M.l - M.r);
      const sy = y => H - M.b - (y - ymin) / (ymax - ymin) * (H - M.t - M.b);
      const axes = svgEl("g", { class: "axes" }, this.svg);
      for (const t of ticks(ymin, ymax, 5)) {
        svgEl("line", { x1: M.l, x2: W - M.r, y1: sy(t), y2: sy(t), class: "grid" }, axes);
        svgEl("text", { x: M.l - 6, y: sy(t) + 4, "text-anchor": "end" }, axes).textContent = fmt(t);
      }
      for (const t of ticks(xmin, xmax, 6)) {
        if (!byOrder && !Number.isInteger(t)) continue;
        svgEl("line", { x1: sx(t), x2: sx(t), y1: H - M.b, y2: H - M.b + 4, class: "tick" }, axes);
        svgEl("text", { x: sx(t), y: H - M.b + 16, "text-anchor": "middle" }, axes).textContent = fmt(t);
      }
      svgEl("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, class: "frame" }, axes);
      svgEl("text", { x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle", class: "label" }, axes)
        .textContent = byOrder ? "point" : "step";
      for (const s of all) {
        if (s.lo && s.hi) {
          const edge = [];
          for (let i = 0; i < s.px.length; i++) if (s.hi[i] !== null) edge.push(sx(s.px[i]).toFixed(1) + "," + sy(s.hi[i]).toFixed(1));
          for (let i = s.px.length - 1; i >= 0; i--) if (s.lo[i] !== null) edge.push(sx(s.px[i]).toFixed(1) + "," + sy(s.lo[i]).toFixed(1));
          if (edge.length > 2) svgEl("polygon", { points: edge.join(" "), fill: s.color, class: "band" }, this.svg);
        }
        const d = pathOf(s.px, s.y, sx, sy);
        if (d) svgEl("path", { d: d, stroke: s.color, class: "line" }, this.svg);
        if (s.y.length <= 40) {
          for (let i = 0; i < s.y.length; i++) {
            if (s.y[i] !== null && Number.isFinite(s.y[i])) svgEl("circle", { cx: sx(s.px[i]), cy: sy(s.y[i]), r: 2.5, fill: s.color }, this.svg);
          }
        }
      }
      this.renderLegend(all);
    }

    renderLegend(all) {
      this.legend.textContent = "";
      if (all.length < 2 && !all.some(s => s.lo)) return;
      for (const s of all) {
        const item = document.createElement("span");
        const sw = document.createElement("i");
        sw.style.background = s.color;
        item.appendChild(sw);
        item.appendChild(document.createTextNode(s.label));
        this.legend.appendChild(item);
      }
    }
  }

  function keyPath(key) { return key.split("/").map(encodeURIComponent).join("/"); }

  /* Live metric plots of one or more runs: every second while a run is running, each run's new points
     (the bytes its metric files gained since the last poll) are fetched and appended. */
  class Live {
    constructor(box) {
      this.box = box;
      this.runs = JSON.parse(box.dataset.runs);  // [{key, label}]
      this.groups = box.dataset.groups ? JSON.parse(box.dataset.groups) : [];  // [{label, runs: [key]}]
      this.mode = "run";
      this.plots = new Map();
      this.state = new Map(this.runs.map(r => [r.key, { offsets: {}, series: new Map(), status: null, more: false }]));
      this.polls = 0;
      this.loop();
    }

    async poll(run) {
      const st = this.state.get(run.key);
      if (st.status !== null && st.status !== "running" && !st.more) return;
      const url = `/api/points/${keyPath(run.key)}?offsets=${encodeURIComponent(JSON.stringify(st.offsets))}`;
      const res = await fetch(url, { cache: "no-store" });
      if (!res.ok) throw new Error(`${url}: ${res.status}`);
      const body = await res.json();
      for (const s of body.series) {
        let data = st.series.get(s.key);
        if (!data || s.reset) { data = { name: s.name, context: s.context, rank: s.rank, x: [], y: [] }; st.series.set(s.key, data); }
        for (let i = 0; i < s.step.length; i++) { data.x.push(s.step[i]); data.y.push(s.value[i]); }
        st.offsets[s.key] = [s.location, s.offset];
      }
      const before = st.status;
      st.status = body.status;
      st.more = body.series.some(s => s.more);  // a long history comes in several answers
      if (before === "running" && body.status !== "running") this.box.dispatchEvent(new CustomEvent("runended", { detail: run.key }));
      this.box.dispatchEvent(new CustomEvent("status", { detail: { key: run.key, status: body.status } }));
    }

    async loop() {
      try {
        await Promise.all(this.runs.map(r => this.poll(r)));
        this.polls += 1;
        this.render();
        this.box.dataset.polls = String(this.polls);
      } catch (err) {
        this.box.dataset.error = String(err);
      }
      const states = [...this.state.values()];
      const running = states.some(s => s.status === "running" || s.status === null), more = states.some(s => s.more);
      this.box.dataset.live = running || more ? "1" : "0";
      if (running) this.renderSummary();
      if (running || more) setTimeout(() => this.loop(), more ? 0 : POLL_MS);
    }

    plot(name) {
      let p = this.plots.get(name);
      if (!p) {
        p = new Plot(this.box, name, "plot-" + name.replace(/[^A-Za-z0-9_-]/g, "_"));
        this.plots.set(name, p);
        const figs = [...this.box.children].filter(c => c.tagName === "FIGURE").sort((a, b) => a.id < b.id ? -1 : 1);
        figs.forEach(f => this.box.appendChild(f));
      }
      return p;
    }

    render() {
      for (const p of this.plots.values()) p.series.clear();
      const multi = this.runs.length > 1;
      if (this.mode === "config") this.renderGroups();
      else {
        for (const run of this.runs) {
          const ranks = new Set([...this.state.get(run.key).series.values()].map(s => s.rank));
          for (const [skey, s] of this.state.get(run.key).series) {
            const label = [multi ? run.label : null, ranks.size > 1 ? "rank " + s.rank : null].filter(Boolean).join(", ") || s.name;
            this.plot(s.name + " (" + s.context + ")").set(run.key + "|" + skey, { label: label, x: s.x, y: s.y });
          }
        }
      }
      const colours = new Map();  // one colour per line label across the plots
      for (const p of this.plots.values()) {
        for (const s of p.series.values()) {
          if (!colours.has(s.label)) colours.set(s.label, PALETTE[colours.size % PALETTE.length]);
          s.color = colours.get(s.label);
        }
        p.render();
      }
      this.box.dataset.points = String([...this.plots.values()].reduce((n, p) => n + Number(p.svg.dataset.points), 0));
    }

    // Mean and sample std over the repetitions of each configuration, step by step (lowest rank of each run).
    renderGroups() {
      for (const g of this.groups) {
        const byName = new Map();
        for (const key of g.runs) {
          const st = this.state.get(key);
          if (!st) continue;
          const lowest = new Map();
          for (const s of st.series.values()) {
            const name = s.name + " (" + s.context + ")";
            if (!lowest.has(name) || s.rank < lowest.get(name).rank) lowest.set(name, s);
          }
          for (const [name, s] of lowest) {
            if (!byName.has(name)) byName.set(name, new Map());
            const steps = byName.get(name);
            s.x.forEach((x, i) => { if (s.y[i] !== null) { if (!steps.has(x)) steps.set(x, []); steps.get(x).push(s.y[i]); } });
          }
        }
        for (const [name, steps] of byName) {
          const xs = [...steps.keys()].sort((a, b) => a - b), mean = [], lo = [], hi = [];
          for (const x of xs) {
            const v = steps.get(x), m = v.reduce((a, b) => a + b, 0) / v.length;
            const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) * (b - m), 0) / (v.length - 1)) : 0;
            mean.push(m); lo.push(m - sd); hi.push(m + sd);
          }
          this.plot(name).set("group|" + g.label, { label: g.label + " (mean ± std, n=" + g.runs.length + ")", x: xs, y: mean, lo: lo, hi: hi });
        }
      }
    }

    setMode(mode) { this.mode = mode; this.render(); }

    /* While a run goes on, its summary table (the document's, refreshed every few seconds by the library)
       is computed here from the points the plots hold, which are fresher. */
    renderSummary() {
      const table = document.querySelector(this.box.dataset.summary || "#none");
      if (!table || this.runs.length !== 1) return;
      const body = table.tBodies[0], rows = new Map([...body.rows].map(r => [r.dataset.key, r]));
      for (const [key, s] of this.state.get(this.runs[0].key).series) {
        let lo = Infinity, hi = -Infinity, sum = 0, n = 0;  // a loop: Math.min(...ys) overflows the stack on long runs
        for (const y of s.y) if (y !== null && Number.isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y); sum += y; n++; }
        const xs = s.x.filter(x => x !== null);
        const cells = [s.name, s.context, s.rank, s.y.length, n ? lo : null, n ? hi : null,
          s.y.length ? s.y[s.y.length - 1] : null, n ? sum / n : null, xs.length ? xs[0] : null, xs.length ? xs[xs.length - 1] : null];
        let row = rows.get(key);
        if (!row) { row = body.insertRow(); row.dataset.key = key; for (let i = 0; i <= cells.length; i++) row.insertCell(); }
        cells.forEach((v, i) => {
          row.cells[i].textContent = typeof v === "number" ? (Number.isInteger(v) ? String(v) : String(+v.toPrecision(6))) : (v ?? "");
          if (typeof v === "number") row.cells[i].className = "num";
        });
      }
    }
  }

  /* Zoom (wheel, buttons) and pan (drag) of an inline SVG by its viewBox. */
  function zoomable(box) {
    const svg = box.querySelector("svg");
    if (!svg) return;
    const vb = svg.viewBox.baseVal, home = [vb.x, vb.y, vb.width, vb.height];
    const zoom = (f, cx, cy) => {
      cx = cx === undefined ? vb.x + vb.width / 2 : cx; cy = cy === undefined ? vb.y + vb.height / 2 : cy;
      vb.x = cx - (cx - vb.x) * f; vb.y = cy - (cy - vb.y) * f; vb.width *= f; vb.height *= f;
      box.dataset.zoom = (home[2] / vb.width).toFixed(3);
    };
    const at = e => { const r = svg.getBoundingClientRect(); return [vb.x + (e.clientX - r.left) / r.width * vb.width, vb.y + (e.clientY - r.top) / r.height * vb.height]; };
    svg.addEventListener("wheel", e => { e.preventDefault(); const [x, y] = at(e); zoom(e.deltaY > 0 ? 1.2 : 1 / 1.2, x, y); }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", e => { drag = [e.clientX, e.clientY]; svg.setPointerCapture(e.pointerId); });
    svg.addEventListener("pointermove", e => {
      if (!drag) return;
      const r = svg.getBoundingClientRect();
      vb.x -= (e.clientX - drag[0]) / r.width * vb.width; vb.y -= (e.clientY - drag[1]) / r.height * vb.height;
      drag = [e.clientX, e.clientY];
    });
    svg.addEventListener("pointerup", () => { drag = null; });
    const controls = box.parentElement.querySelector(".zoom");
    if (controls) controls.addEventListener("click", e => {
      const what = e.target.dataset.zoom;
      if (what === "in") zoom(1 / 1.25); else if (what === "out") zoom(1.25);
      else if (what === "reset") { [vb.x, vb.y, vb.width, vb.height] = home; box.dataset.zoom = "1.000"; }
    });
    box.dataset.zoom = "1.000";
  }

  async function loadGraph(box) {
    try {
      const res = await fetch(box.dataset.src);
      const text = await res.text();
      if (!res.ok) {  // the server says why (Graphviz missing, say) as {"error": ...}
        let message = text;
        try { message = JSON.parse(text).error; } catch (e) { /* not JSON: show it as it is */ }
        box.textContent = "the graph cannot be drawn: " + message;
        box.dataset.error = String(res.status);
        return;
      }
      box.innerHTML = text;
      box.dataset.nodes = String(box.querySelectorAll("g.node").length);
      zoomable(box);
    } catch (err) {
      box.textContent = "the graph could not be loaded: " + err;
      box.dataset.error = String(err);
    }
  }

  const sorts = {};  // table id -> [column, direction]: kept when the runs list reads itself again

  function sortBy(table, col, dir) {
    const body = table.tBodies[0], rows = [...body.rows], ths = table.querySelectorAll("thead th");
    if (!ths[col]) return;
    ths.forEach(h => delete h.dataset.dir);
    ths[col].dataset.dir = dir === 1 ? "asc" : "desc";
    if (table.id) sorts[table.id] = [col, dir];
    const val = r => {
      const c = r.cells[col], v = c ? (c.dataset.sort ?? c.textContent) : "", n = parseFloat(v);
      return Number.isNaN(n) || !/^[-+\d.eE]+$/.test(v.trim()) ? v : n;
    };
    rows.sort((a, b) => {
      const x = val(a), y = val(b);
      return (typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : typeof x === "number" ? -1 : 1) * dir;
    });
    rows.forEach(r => body.appendChild(r));
  }

  function sortable(table) {
    table.querySelectorAll("thead th").forEach((th, col) => th.addEventListener("click", () => {
      sortBy(table, col, th.dataset.dir === "asc" ? -1 : 1);
    }));
    if (table.id && sorts[table.id]) sortBy(table, ...sorts[table.id]);
  }

  function init() {
    document.querySelectorAll("table.sortable").forEach(sortable);
    const lives = [...document.querySelectorAll(".live")].map(box => new Live(box));
    window.P4.lives = lives;
    document.querySelectorAll("[data-mode]").forEach(b => b.addEventListener("click", () => {
      document.querySelectorAll("[data-mode]").forEach(x => x.classList.toggle("on", x === b));
      lives.forEach(l => l.setMode(b.dataset.mode));
    }));
    const badge = document.getElementById("run-status");
    lives.forEach(l => {
      l.box.addEventListener("status", e => { if (badge) { badge.textContent = e.detail.status; badge.dataset.status = e.detail.status; } });
      // the summary tables are the server's: read them again once the run has ended
      if (l.box.dataset.reloadOnEnd) l.box.addEventListener("runended", () => setTimeout(() => location.reload(), 500));
    });
    document.querySelectorAll(".graph[data-src]").forEach(loadGraph);
  }

  window.P4 = { Plot: Plot, Live: Live, zoomable: zoomable, sortable: sortable, lives: [] };  // runs.js sorts with it
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
