/* prov4ml ui: live plots (drawn by plot.js) fed by polling the run's metric files, the comparison's
   sweep charts, zoomable graphs, sortable tables; runs.js has the runs tables' filter, columns and ticks. */
(function () {
  "use strict";
  const PALETTE = window.P4Plot.PALETTE;
  const POLL_MS = 1000;
  const COMPLETE = new Set(["finished"]);  // what mean ± std averages unless told to include every run

  function keyPath(key) { return key.split("/").map(encodeURIComponent).join("/"); }

  /* Live metric plots of one or more runs: every second while a run is running, each run's new points
     (the bytes its metric files gained since the last poll) are fetched and appended. */
  class Live {
    constructor(box) {
      this.box = box;
      this.runs = JSON.parse(box.dataset.runs);  // [{key, label, status}]
      this.groups = box.dataset.groups ? JSON.parse(box.dataset.groups) : [];  // [{label, runs: [key]}]
      this.mode = "run";
      this.includeAll = false;  // mean ± std: finished runs only, unless the toggle says every run
      this.plots = new Map();
      this.state = new Map(this.runs.map(r => [r.key, { offsets: {}, series: new Map(), status: null, more: false }]));
      this.polls = 0;
      this.drawn = new Promise(resolve => { this.firstDrawn = resolve; });  // the first answers drawn (or failed)
      this.loop();
    }

    async poll(run) {
      const st = this.state.get(run.key);
      if (st.status !== null && st.status !== "running" && !st.more) return;
      const url = `/api/points/${keyPath(run.key)}?offsets=${encodeURIComponent(JSON.stringify(st.offsets))}`;
      const early = window.P4Prefetch && window.P4Prefetch.take(url);  // asked for by prefetch.js
      const res = await (early || fetch(url, { cache: "no-store" }));
      if (!res.ok) throw new Error(`${url}: ${res.status}`);
      const body = await res.json();
      for (const s of body.series) {
        let data = st.series.get(s.key);
        if (!data || s.reset) { data = { name: s.name, context: s.context, rank: s.rank, x: [], y: [], t: [], total: 0 }; st.series.set(s.key, data); }
        for (let i = 0; i < s.step.length; i++) { data.x.push(s.step[i]); data.y.push(s.value[i]); data.t.push(s.time[i]); }
        data.total += s.total ?? s.step.length;  // a decimated answer stands for more points than it holds
        data.full = s.full;
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
      this.firstDrawn();
      const states = [...this.state.values()];
      const running = states.some(s => s.status === "running" || s.status === null), more = states.some(s => s.more);
      this.box.dataset.live = running || more ? "1" : "0";
      if (running) this.renderSummary();
      if (running || more) setTimeout(() => this.loop(), more ? 0 : POLL_MS);
    }

    plot(name) {
      let p = this.plots.get(name);
      if (!p) {
        p = new window.P4Plot.Chart(this.box, name, "plot-" + name.replace(/[^A-Za-z0-9_-]/g, "_"));
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
            this.plot(s.name + " (" + s.context + ")").set(run.key + "|" + skey,
              { label: label, x: s.x, y: s.y, t: s.t, run: run.key, total: s.total, full: s.full });
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
      this.box.dataset.points = String([...this.plots.values()].reduce((n, p) => n + Number(p.fig.dataset.points), 0));
    }

    /* Mean and sample std over the repetitions of each configuration, step by step (lowest rank of each
       run); a killed, failed or still running run is no repetition unless includeAll says so. */
    used(g) {
      return g.runs.filter(key => {
        const st = this.state.get(key), run = this.runs.find(r => r.key === key);
        return this.includeAll || COMPLETE.has((st && st.status) || (run && run.status));
      });
    }

    renderGroups() {
      for (const g of this.groups) {
        const byName = new Map(), used = this.used(g);
        for (const key of used) {
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
          this.plot(name).set("group|" + g.label, { label: g.label + " (mean ± std, n=" + used.length + ")", x: xs, y: mean, lo: lo, hi: hi });
        }
      }
    }

    setMode(mode) { this.mode = mode; this.render(); }

    setIncludeAll(all) { this.includeAll = all; this.render(); }

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
    // an empty cell or a NaN has no value to rank: last in either direction, as `prov4ml ls --sort` puts it
    const val = r => {
      const c = r.cells[col], v = c ? (c.dataset.sort ?? c.textContent) : "", t = v.trim(), n = parseFloat(t);
      if (t === "" || /^[-+]?nan$/i.test(t)) return null;
      return Number.isNaN(n) || !/^[-+\d.eE]+$/.test(t) ? v : n;
    };
    rows.sort((a, b) => {
      const x = val(a), y = val(b);
      if (x === null || y === null) return (x === null) - (y === null);
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

  /* A sweep's parallel coordinates and parameter-vs-metric scatter, redrawn when a select changes. */
  function sweepCharts() {
    const tag = document.getElementById("sweep-data");
    if (!tag) return;
    const spec = JSON.parse(tag.textContent), metric = document.getElementById("sweep-metric"), param = document.getElementById("sweep-param");
    const include = document.getElementById("include-all");
    const draw = () => {
      const rows = spec.rows.filter(r => r.metrics[metric.value] !== undefined && r.metrics[metric.value] !== null
        && (COMPLETE.has(r.status) || (include && include.checked)));
      window.P4Plot.parallel(document.getElementById("parallel"), {
        dims: [...spec.params, metric.value], rows: rows.map(r => ({ label: r.label, values: [...spec.params.map(p => r.params[p] ?? null), r.metrics[metric.value]] })) });
      window.P4Plot.scatter(document.getElementById("scatter"), { rows: rows }, param.value, metric.value);
    };
    if (include) include.addEventListener("change", draw);
    metric.addEventListener("change", draw);
    param.addEventListener("change", draw);
    draw();
  }

  function init() {
    document.querySelectorAll("table.sortable").forEach(sortable);
    const lives = [...document.querySelectorAll(".live")].map(box => new Live(box));
    window.P4.lives = lives;
    document.querySelectorAll("[data-mode]").forEach(b => b.addEventListener("click", () => {
      document.querySelectorAll("[data-mode]").forEach(x => x.classList.toggle("on", x === b));
      lives.forEach(l => l.setMode(b.dataset.mode));
    }));
    const include = document.getElementById("include-all");
    if (include) include.addEventListener("change", () => {
      lives.forEach(l => l.setIncludeAll(include.checked));
      document.querySelectorAll("[data-include]").forEach(t => { t.hidden = (t.dataset.include === "all") !== include.checked; });
    });
    sweepCharts();
    const badge = document.getElementById("run-status");
    lives.forEach(l => {
      l.box.addEventListener("status", e => { if (badge) { badge.textContent = e.detail.status; badge.dataset.status = e.detail.status; } });
      // the summary tables are the server's: read them again once the run has ended
      if (l.box.dataset.reloadOnEnd) l.box.addEventListener("runended", () => setTimeout(() => location.reload(), 500));
    });
    // the graph (Graphviz on the server) after the plots' first points: not competing for the same cores
    Promise.all(lives.map(l => l.drawn)).then(() => document.querySelectorAll(".graph[data-src]").forEach(loadGraph));
  }

  window.P4 = { Live: Live, zoomable: zoomable, sortable: sortable, lives: [] };  // runs.js sorts with it
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
