/* prov4ml plots: the one plotting module of the web UI and of the HTML reports (inlined there).
   Drawn by the vendored Apache ECharts (vendor/echarts.min.js) with its SVG renderer, so the axes are
   DOM text and "download SVG" is the chart itself. Every line plot has smoothing (EMA, raw line faint
   behind), a log scale toggle, x = step / relative time / wall time, a hover readout of every series,
   box zoom (drag) and reset, and downloads as PNG, SVG and CSV of the shown data. */
(function () {
  "use strict";
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const X_MODES = { step: "step", relative: "relative time [s]", wall: "wall time" };
  const SUPER = { "-": "⁻", "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹" };
  const W = 480, H = 290;
  // The plots' own style, here so that the UI and the reports (which inline this file) look the same.
  const CSS = ".p4bar{display:flex;flex-wrap:wrap;gap:.2em .6em;align-items:center;font-size:.78em;color:#444;margin-bottom:.2em}" +
    ".p4bar input[type=range]{width:6em;vertical-align:middle}.p4bar button,.p4bar select{font-size:1em;padding:0 .3em}" +
    ".p4holder{position:relative;width:fit-content}.p4empty{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;color:#777;font-size:.9em;z-index:1}.p4empty[hidden]{display:none}" +
    "figure.p4plot .note{font-size:.78em;color:#777;min-height:1em;max-width:480px}.p4tip{font-size:12px!important}.p4tip .p4head{color:#555}";

  function style() {
    if (document.getElementById("p4plot-style")) return;
    el("style", { id: "p4plot-style" }, document.head, CSS);
  }

  function el(tag, attrs, parent, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function stripZeros(text) {  // distinct numbers stay distinct: only redundant zeros go
    return text.replace(/(\.\d*?)0+(?=$|e)/, "$1").replace(/\.(?=$|e)/, "");
  }

  /* A tick label with enough digits that the ticks of an axis spanning ``span`` differ: ECharts puts
     about 5 ticks on an axis, so a tenth of the span, to its power of ten, is never more than their
     step; the zeros that are not needed go. Ticks of 331000000 + 0..50 read 3.3100001e8, 3.3100002e8...,
     never 3.31e+8 four times. */
  function tickLabel(v, span) {
    if (v === 0) return "0";
    const width = Math.abs(span[1] - span[0]), step = width > 0 ? Math.pow(10, Math.floor(Math.log10(width / 10))) : Math.abs(v) || 1;
    const a = Math.abs(v), big = Math.max(Math.abs(span[0]), Math.abs(span[1]), a);
    if (big >= 1e6 || big < 1e-3) {
      const digits = Math.max(0, Math.min(15, Math.floor(Math.log10(a)) - Math.floor(Math.log10(step) + 1e-9)));
      return stripZeros(v.toExponential(digits)).replace("e+", "e");
    }
    return stripZeros(v.toFixed(Math.max(0, Math.min(15, -Math.floor(Math.log10(step) + 1e-9)))));
  }

  function powerLabel(v) {  // a log axis: 10ᵏ at powers of ten
    const k = Math.log10(v);
    if (Math.abs(k - Math.round(k)) < 1e-9) return "10" + String(Math.round(k)).replace(/./g, c => SUPER[c]);
    return stripZeros(v.toPrecision(3));
  }

  function fmtValue(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "";
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(4) : String(+v.toPrecision(6));
  }

  /* A wall-time tick: the time of day, with milliseconds when the axis spans seconds, the date when days. */
  function wallLabel(ms, span) {
    const d = new Date(ms), pad = (n, w) => String(n).padStart(w || 2, "0"), width = Math.abs(span[1] - span[0]);
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` + (width < 10000 ? "." + pad(d.getMilliseconds(), 3) : "");
    return width > 86400000 ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` + time.slice(0, 5) : time;
  }

  /* EMA as TensorBoard smooths: debiased, so the first points are not pulled towards 0; gaps are skipped. */
  function ema(ys, weight) {
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      if (y === null || !Number.isFinite(y)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * y; n += 1;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  function download(name, href) {
    const a = el("a", { href: href, download: name });
    document.body.appendChild(a); a.click(); a.remove();
  }

  function slug(text) { return String(text).replace(/[^A-Za-z0-9_.-]+/g, "_"); }

  /* One line plot. ``set(key, series)`` with series {label, color?, x: steps, t?: times (s since the
     epoch), y, lo?, hi?, run?, total?, full?}; then ``render()``. x is the step, unless a series logs
     several points at one step (or steps go back): then the plot draws by point order and says so. */
  class Chart {
    constructor(parent, title, id, opts) {
      opts = opts || {};
      this.title = title; this.ylabel = opts.ylabel || ""; this.series = new Map();
      this.smooth = 0; this.log = false; this.xmode = "step";
      style();
      this.fig = opts.figure || el("figure", {}, parent);
      this.fig.classList.add("plot", "p4plot");
      this.fig.dataset.points = "0"; this.fig.dataset.series = "0";
      if (id) this.fig.id = id;
      if (!opts.figure) el("figcaption", {}, this.fig, title);
      this.bar = el("div", { class: "p4bar" }, this.fig);
      const smooth = el("label", { title: "exponential moving average; the raw line stays faint behind" }, this.bar, "smooth ");
      this.slider = el("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: "0", class: "p4smooth" }, smooth);
      this.slider.addEventListener("input", () => { this.smooth = Number(this.slider.value); this.render(); });
      const log = el("label", { title: "logarithmic y axis" }, this.bar);
      this.logBox = el("input", { type: "checkbox", class: "p4log" }, log);
      log.appendChild(document.createTextNode(" log"));
      this.logBox.addEventListener("change", () => { this.log = this.logBox.checked; this.render(); });
      this.xSelect = el("select", { class: "p4x", title: "x axis" }, this.bar);
      for (const m in X_MODES) el("option", { value: m }, this.xSelect, "x: " + X_MODES[m]);
      this.xSelect.addEventListener("change", () => { this.xmode = this.xSelect.value; this.render(); });
      const buttons = { reset: "reset zoom", png: "PNG", svg: "SVG", csv: "CSV" };
      for (const b in buttons) el("button", { type: "button", "data-act": b }, this.bar, buttons[b])
        .addEventListener("click", () => this[b === "reset" ? "resetZoom" : "save" + b.toUpperCase()]());
      const holder = el("div", { class: "p4holder" }, this.fig);
      this.emptyBox = el("div", { class: "p4empty", hidden: "" }, holder);
      this.box = el("div", { class: "p4chart", style: `width:${opts.width || W}px;height:${opts.height || H}px` }, holder);
      this.note = el("div", { class: "note" }, this.fig);
      this.chart = echarts.init(this.box, null, { renderer: "svg" });
      this.chart.on("datazoom", () => { this.fig.dataset.zoomed = "1"; });
    }

    set(key, s) { this.series.set(key, s); }

    /* What is drawn: per series its x (in the x mode), raw y and band, and the mode's axis name. */
    shown() {
      const all = [...this.series.values()];
      const byOrder = this.xmode === "step" && all.some(s => s.x.some((v, i) => i > 0 && !(v > s.x[i - 1])));
      const timed = all.length > 0 && all.every(s => s.t && s.t.length === s.y.length);
      const mode = timed ? this.xmode : "step";
      const t0 = new Map();  // relative time: from each run's first point
      if (mode === "relative") for (const s of all) for (const t of s.t) if (t !== null) t0.set(s.run || s.label, Math.min(t0.get(s.run || s.label) ?? Infinity, t));
      const lines = all.map((s, n) => {
        const xs = s.y.map((_, i) => mode === "wall" ? (s.t[i] === null ? null : s.t[i] * 1000)
          : mode === "relative" ? (s.t[i] === null ? null : s.t[i] - t0.get(s.run || s.label))
          : byOrder ? i : s.x[i]);
        return { s: s, n: n, x: xs };
      });
      return { lines: lines, mode: mode, byOrder: byOrder, timed: timed,
        xname: mode === "step" ? (byOrder ? "point (logged order)" : "step") : X_MODES[mode] };
    }

    /* Tick labels: digits from the axis' extent as drawn now, zoomed or not (see tickLabel). */
    yLabel(v) {
      if (this.log) return powerLabel(v);
      const scale = this.axisScale("yAxis");
      return scale ? tickLabel(v, scale.getExtent()) : fmtValue(v);
    }

    xLabel(v, mode) {
      const scale = this.axisScale("xAxis"), span = scale ? scale.getExtent() : [v, v];
      return mode === "wall" ? wallLabel(v, span) : tickLabel(v, span);
    }

    axisScale(which) {
      try { return this.chart.getModel().getComponent(which, 0).axis.scale; } catch (e) { return null; }
    }

    option() {
      const v = this.shown(), sm = this.smooth, out = [];
      let points = 0, hidden = 0, clipped = 0;
      const multi = v.lines.length > 1;
      // the log scale's floor for a band: the smallest positive value drawn (a band's lower edge below it is cut there)
      let floor = Infinity;
      if (this.log) for (const { s } of v.lines) for (const ys of [s.y, s.lo || [], s.hi || []]) for (const y of ys) if (y > 0 && y < floor) floor = y;
      for (const { s, n, x } of v.lines) {
        const color = s.color || PALETTE[n % PALETTE.length];
        const pair = (ys, i) => (x[i] === null || ys[i] === null || !Number.isFinite(ys[i]) || (this.log && ys[i] <= 0)) ? null : [x[i], ys[i]];
        const data = ys => { const d = []; for (let i = 0; i < ys.length; i++) { const p = pair(ys, i); if (p) d.push(p); } return d; };
        points += s.y.length;
        if (this.log) hidden += s.y.filter(y => y !== null && y <= 0).length;
        const common = { type: "line", showSymbol: s.y.length <= 40, symbolSize: 4, animation: false, color: color, emphasis: { disabled: true } };
        if (s.lo && s.hi) {  // the band: lo, then hi - lo stacked on it
          const low = this.log ? s.lo.map(y => y !== null && y <= 0 ? floor : y) : s.lo;
          if (this.log) clipped += s.lo.filter((y, i) => y !== null && y <= 0 && s.hi[i] > 0).length;
          const lo = [], width = [];
          for (let i = 0; i < s.hi.length; i++) { const a = pair(low, i), b = pair(s.hi, i); if (a && b) { lo.push(a); width.push([a[0], b[1] - a[1]]); } }
          out.push({ ...common, name: s.label + " (low)", data: lo, stack: "band" + n, lineStyle: { opacity: 0 }, showSymbol: false, tooltip: { show: false }, silent: true });
          out.push({ ...common, name: s.label + " (band)", data: width, stack: "band" + n, lineStyle: { opacity: 0 }, showSymbol: false,
            areaStyle: { color: color, opacity: 0.18 }, tooltip: { show: false }, silent: true });
        }
        if (sm > 0) {
          out.push({ ...common, name: s.label + " (raw)", data: data(s.y), lineStyle: { width: 1, opacity: 0.25 }, itemStyle: { opacity: 0.25 } });
          out.push({ ...common, name: s.label, data: data(ema(s.y, sm)), lineStyle: { width: 1.6 } });
        } else {
          out.push({ ...common, name: s.label, data: data(s.y), lineStyle: { width: 1.6 } });
        }
      }
      const f = this.fig.dataset;
      f.points = String(points); f.series = String(v.lines.length); f.x = v.byOrder ? "order" : v.mode; f.log = this.log ? "1" : "0";
      this.xSelect.disabled = !v.timed;
      const notes = [];
      if (v.byOrder) notes.push("x: point order (several points share a step)");
      if (hidden) notes.push(hidden + " value(s) ≤ 0 not drawn on the log scale");
      if (clipped) notes.push(`the band's lower edge cut at ${fmtValue(floor)} (the smallest positive value) at ${clipped} step(s) on the log scale`);
      for (const { s } of v.lines) if (s.total && s.total > s.y.length) notes.push(`${s.label}: ${s.y.length.toLocaleString()} of ${s.total.toLocaleString()} points drawn (each pixel's min and max kept)`);
      this.renderNote(notes, v.lines);
      this.empty = this.emptyNote(v.lines);
      const legend = multi || v.lines.some(l => l.s.lo) || sm > 0;
      return {
        animation: false,
        grid: { left: 10, right: 16, top: 48, bottom: 30, containLabel: true },  // room for the legend, shown or not: a toggle never moves the plot
        legend: { show: legend, type: "scroll", top: 0, textStyle: { fontSize: 11 }, data: out.filter(o => !o.silent).map(o => o.name) },
        tooltip: { trigger: "axis", className: "p4tip", confine: true, transitionDuration: 0, order: "seriesAsc",
          axisPointer: { type: "line", animation: false },
          formatter: items => {
            const head = v.mode === "wall" ? new Date(items[0].axisValue).toISOString().replace("T", " ").slice(0, 23) : fmtValue(items[0].axisValue);
            const rows = items.filter(i => !/ \((low|band)\)$/.test(i.seriesName)).map(i =>
              `<div class="p4row" data-name="${escapeHtml(i.seriesName)}" data-value="${i.value[1]}">${i.marker}${escapeHtml(i.seriesName)}: <b>${fmtValue(i.value[1])}</b></div>`);
            return `<div class="p4head">${escapeHtml(v.xname)} ${head}</div>` + rows.join("");
          } },
        toolbox: { right: 4, top: 22, itemSize: 12, feature: { dataZoom: { yAxisIndex: 0, xAxisIndex: 0, title: { zoom: "box zoom", back: "zoom back" } } } },
        xAxis: { type: v.mode === "wall" ? "time" : "value", name: v.xname, nameLocation: "middle", nameGap: 24, scale: true,
          min: "dataMin", max: "dataMax", minInterval: v.mode === "step" && !v.byOrder ? 1 : 0, splitLine: { show: false },
          axisLabel: { hideOverlap: true, formatter: x => this.xLabel(x, v.mode) } },
        // the name above the axis, not beside it: long tick labels (3.3100001e8) never run into it
        yAxis: { type: this.log ? "log" : "value", name: this.ylabel, nameLocation: "end", nameGap: 8,
          nameTextStyle: { align: "left", color: "#444" }, scale: true,
          axisLabel: { hideOverlap: true, formatter: y => this.yLabel(y) } },
        series: out,
      };
    }

    /* What the plot holds when it has no point to draw ("all 12 values are NaN or infinite", "no points
       yet"), said in the plot's place; "" when something is drawn. */
    emptyNote(lines) {
      const say = s => {
        const n = Math.max(s.total || 0, s.y.length);
        return n === 0 ? "no points yet" : n === 1 ? "its one value is NaN or infinite" : `all ${n.toLocaleString()} values are NaN or infinite`;
      };
      if (lines.some(({ s }) => s.y.some(y => y !== null && Number.isFinite(y)))) return "";
      return lines.length === 1 ? say(lines[0].s) : lines.map(({ s }) => `${s.label}: ${say(s)}`).join("; ");
    }

    renderNote(notes, lines) {
      this.note.textContent = notes.join("; ");
      for (const { s } of lines) {
        if (!s.full || !(s.total > s.y.length)) continue;
        this.note.appendChild(document.createTextNode(" "));
        el("a", { href: s.full, class: "p4full" }, this.note, `all ${s.total.toLocaleString()} points of ${s.label} (CSV)`);
      }
    }

    render() {
      if (this.series.size === 0) { this.fig.dataset.points = "0"; this.chart.clear(); this.showEmpty("no points yet"); return; }
      const zoomed = this.fig.dataset.zoomed === "1" && this.lastMode === this.xmode + this.log;
      const option = this.option();
      this.showEmpty(this.empty);
      this.chart.setOption(option, { notMerge: !zoomed, lazyUpdate: false });
      this.lastMode = this.xmode + this.log;
      this.chart.dispatchAction({ type: "takeGlobalCursor", key: "dataZoomSelect", dataZoomSelectActive: true });
      if (!zoomed) delete this.fig.dataset.zoomed;
      this.fig.dataset.rendered = String((Number(this.fig.dataset.rendered) || 0) + 1);
      if (!this.fig.dataset.drawnAt && typeof performance !== "undefined") this.fig.dataset.drawnAt = performance.now().toFixed(1);  // for benchmarks/ui_plots.py
    }

    /* ``text`` in the plot's place (the chart hidden), or the chart again when ``text`` is empty. */
    showEmpty(text) {
      const was = this.box.style.visibility === "hidden";
      this.emptyBox.textContent = text;
      this.emptyBox.hidden = !text;
      this.box.style.visibility = text ? "hidden" : "";
      if (text) this.fig.dataset.empty = text; else delete this.fig.dataset.empty;
      if (was && !text) this.chart.resize();
    }

    /* The x and y ranges drawn now (after a zoom, the zoomed ones). */
    ranges() { return { x: this.axisScale("xAxis").getExtent(), y: this.axisScale("yAxis").getExtent() }; }

    resetZoom() { delete this.fig.dataset.zoomed; this.render(); }

    /* The shown points as CSV, one row per point: series, step, time, x (as drawn), value (raw). */
    csv() {
      const v = this.shown(), rows = ["series,step,time,x,value"];
      const q = t => /[",\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
      for (const { s, x } of v.lines) {
        for (let i = 0; i < s.y.length; i++) {
          rows.push([q(s.label), s.x[i] ?? "", s.t ? (s.t[i] ?? "") : "", x[i] ?? "", s.y[i] === null ? "" : String(s.y[i])].join(","));
        }
      }
      return rows.join("\n") + "\n";
    }

    svg() { return this.chart.renderToSVGString(); }

    saveCSV() { download(slug(this.title) + ".csv", URL.createObjectURL(new Blob([this.csv()], { type: "text/csv" }))); }

    saveSVG() { download(slug(this.title) + ".svg", URL.createObjectURL(new Blob([this.svg()], { type: "image/svg+xml" }))); }

    /* The SVG drawn on a white canvas at twice the size. */
    png() {
      return new Promise((resolve, reject) => {
        const img = new Image(), w = this.box.clientWidth, h = this.box.clientHeight;
        img.onload = () => {
          const c = el("canvas", { width: String(2 * w), height: String(2 * h) }), g = c.getContext("2d");
          g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height); g.drawImage(img, 0, 0, c.width, c.height);
          resolve(c.toDataURL("image/png"));
        };
        img.onerror = reject;
        img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(this.svg());
      });
    }

    savePNG() { return this.png().then(url => download(slug(this.title) + ".png", url)); }
  }

  function escapeHtml(t) { return String(t).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }

  /* A sweep's runs as parallel coordinates: one axis per varying parameter, then the metric. */
  function parallel(box, spec) {
    const chart = echarts.getInstanceByDom(box) || echarts.init(box, null, { renderer: "svg" });
    const dims = spec.dims.map((d, i) => {
      const numeric = spec.rows.every(r => r.values[i] === null || typeof r.values[i] === "number");
      const cats = numeric ? null : [...new Set(spec.rows.map(r => String(r.values[i])))];
      return { dim: i, name: d, type: numeric ? "value" : "category", data: cats || undefined, scale: true };
    });
    chart.setOption({
      animation: false,
      parallel: { left: 40, right: 150, top: 30, bottom: 24 },
      parallelAxis: dims,
      tooltip: { trigger: "item", formatter: p => escapeHtml(p.name) },
      visualMap: { show: true, type: "continuous", dimension: dims.length - 1, right: 10, top: "middle", calculable: true, itemHeight: 120,
        min: Math.min(...spec.rows.map(r => r.values[dims.length - 1]).filter(Number.isFinite)),
        max: Math.max(...spec.rows.map(r => r.values[dims.length - 1]).filter(Number.isFinite)),
        inRange: { color: ["#d62728", "#bcbd22", "#2ca02c"] }, text: [spec.dims[dims.length - 1], ""] },
      series: [{ type: "parallel", lineStyle: { width: 1.5, opacity: 0.7 },
        data: spec.rows.map(r => ({ name: r.label, value: r.values.map((v, i) => dims[i].type === "category" ? String(v) : v) })) }],
    }, { notMerge: true });
    box.dataset.lines = String(spec.rows.length);
    return chart;
  }

  /* A sweep's parameter against a metric: one point per run; the selects pick both. */
  function scatter(box, spec, param, metric) {
    const chart = echarts.getInstanceByDom(box) || echarts.init(box, null, { renderer: "svg" });
    const numeric = spec.rows.every(r => r.params[param] === undefined || r.params[param] === null || typeof r.params[param] === "number");
    const pts = spec.rows.filter(r => r.metrics[metric] !== undefined && r.metrics[metric] !== null && r.params[param] !== undefined)
      .map(r => ({ name: r.label, value: [numeric ? r.params[param] : String(r.params[param]), r.metrics[metric]] }));
    const cats = numeric ? undefined : [...new Set(pts.map(p => p.value[0]))].sort();
    chart.setOption({
      animation: false, grid: { left: 66, right: 16, top: 16, bottom: 46 },
      tooltip: { trigger: "item", formatter: p => `${escapeHtml(p.name)}<br>${escapeHtml(param)} = ${escapeHtml(p.value[0])}<br>${escapeHtml(metric)} = ${fmtValue(p.value[1])}` },
      xAxis: { type: numeric ? "value" : "category", data: cats, name: param, nameLocation: "middle", nameGap: 26, scale: true },
      yAxis: { type: "value", name: metric, nameLocation: "middle", nameGap: 52, scale: true },
      series: [{ type: "scatter", symbolSize: 9, data: pts, color: PALETTE[0] }],
    }, { notMerge: true });
    box.dataset.points = String(pts.length);
    return chart;
  }

  /* Every <script class="p4spec"> (JSON, in the <figure> it draws in; the HTML reports): one Chart each. */
  function mountAll(root) {
    const out = [];
    (root || document).querySelectorAll("script.p4spec").forEach(tag => {
      const spec = JSON.parse(tag.textContent);
      const chart = new Chart(null, spec.title, spec.id, { ylabel: spec.ylabel, figure: tag.parentElement });
      spec.series.forEach((s, i) => chart.set(String(i), s));
      chart.render();
      out.push(chart);
    });
    return out;
  }

  window.P4Plot = { Chart: Chart, parallel: parallel, scatter: scatter, mountAll: mountAll, ema: ema, tickLabel: tickLabel, PALETTE: PALETTE };
})();
