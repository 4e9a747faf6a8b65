/* prov4ml ui: the runs tables' tools, on every page that has one (table.runs).
   - the filter box of the runs list: the server filters every run (prov4ml ls --where's grammar) and sends the
     list again, counted; the page's address keeps the filter (?where=), so a reload or a link gives it back;
   - the column chooser and the constant-parameter switch, remembered in localStorage;
   - tick boxes, kept across experiments, filters and pages of this tab (sessionStorage), and "Compare N runs";
   - the runs list reads itself again every few seconds while one of its runs is running. */
(function () {
  "use strict";
  const COLUMNS = "prov4ml.columns";     // localStorage: {column: true (shown) | false (hidden)}, as the user chose
  const CONSTANT = "prov4ml.constants";  // localStorage: "1" shows the parameters with one value in every run
  const TICKED = "prov4ml.ticked";       // sessionStorage: the keys of the ticked runs, in the order ticked
  const REFRESH_MS = 3000;

  function load(storage, key, empty) {
    try { return JSON.parse(storage.getItem(key)) ?? empty; } catch (e) { return empty; }
  }
  const chosen = load(localStorage, COLUMNS, {});
  let showConstant = localStorage.getItem(CONSTANT) === "1";
  const ticked = new Set(load(sessionStorage, TICKED, []));

  const tables = () => [...document.querySelectorAll("table.runs")];

  // The server marks the columns that start hidden: data-hide="constant" (one value in every run) or "more".
  function visible(th) {
    const col = th.dataset.col;
    if (Object.prototype.hasOwnProperty.call(chosen, col)) return chosen[col];
    if (th.dataset.hide === "constant") return showConstant;
    return th.dataset.hide !== "more";
  }

  // One CSS rule per hidden column of each table: the rows a refresh brings follow it without a walk over the cells.
  function applyColumns() {
    const rules = [];
    tables().forEach((table, t) => {
      if (!table.id) table.id = "runs-table-" + t;
      table.querySelectorAll("thead th").forEach((th, i) => {
        const show = visible(th);
        th.dataset.shown = show ? "1" : "0";
        if (!show) rules.push(`#${CSS.escape(table.id)} tr > :nth-child(${i + 1})`);
      });
    });
    let style = document.getElementById("runs-columns");
    if (!style) {
      style = document.createElement("style");
      style.id = "runs-columns";
      document.head.appendChild(style);
    }
    style.textContent = rules.length ? rules.join(",\n") + " { display: none; }" : "";
  }

  function toolbar() {
    let box = document.getElementById("runs-tools");
    if (!box) {  // the experiment and compare pages: above their runs table
      const first = tables()[0];
      if (!first) return null;
      box = document.createElement("div");
      box.id = "runs-tools";
      (first.closest(".scroll") || first).before(box);
    }
    box.className = "runs-tools";
    box.innerHTML = '<button type="button" id="compare" disabled>Compare 0 runs</button> ' +
      '<button type="button" id="untick">untick all</button> ' +
      '<label><input type="checkbox" id="show-constant"> constant parameters</label> ' +
      '<details id="columns"><summary>columns</summary><div class="panel"><div class="choices"></div>' +
      '<button type="button" id="columns-reset">as at first</button></div></details>';
    box.querySelector("#compare").addEventListener("click", () => {
      location.href = "/compare?runs=" + [...ticked].map(encodeURIComponent).join(",");
    });
    box.querySelector("#untick").addEventListener("click", () => { ticked.clear(); syncTicks(); });
    const constant = box.querySelector("#show-constant");
    constant.checked = showConstant;
    constant.addEventListener("change", () => {
      showConstant = constant.checked;
      localStorage.setItem(CONSTANT, showConstant ? "1" : "0");
      refreshColumns();
    });
    box.querySelector("#columns-reset").addEventListener("click", () => {
      for (const k of Object.keys(chosen)) delete chosen[k];
      localStorage.removeItem(COLUMNS);
      refreshColumns();
    });
    box.querySelector(".choices").addEventListener("change", e => {
      chosen[e.target.value] = e.target.checked;
      localStorage.setItem(COLUMNS, JSON.stringify(chosen));
      refreshColumns();
    });
    return box;
  }

  // A tick box per column of any table but the run's; ticked when the column shows in some table.
  function buildChooser() {
    const box = document.querySelector("#runs-tools .choices");
    if (!box) return;
    const cols = new Map();
    for (const th of document.querySelectorAll("table.runs thead th")) {
      const col = th.dataset.col;
      if (col === "run") continue;
      const seen = cols.get(col) || { shown: false, constant: true };
      seen.shown = seen.shown || th.dataset.shown === "1";
      seen.constant = seen.constant && th.dataset.hide === "constant";
      cols.set(col, seen);
    }
    box.textContent = "";
    for (const [col, seen] of cols) {
      const label = document.createElement("label"), input = document.createElement("input");
      input.type = "checkbox";
      input.value = col;
      input.checked = seen.shown;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + col + (seen.constant ? " (constant)" : "")));
      box.appendChild(label);
    }
  }

  function refreshColumns() { applyColumns(); buildChooser(); }

  // A tick box before each run's link, its value the run's key (the link is /run/<key>).
  function addTicks() {
    for (const link of document.querySelectorAll("table.runs tbody tr > td:first-child > a:first-child")) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.className = "tick";
      box.value = decodeURIComponent(link.getAttribute("href").slice("/run/".length));
      link.before(box);
    }
  }

  function syncTicks() {
    document.querySelectorAll("input.tick").forEach(b => { b.checked = ticked.has(b.value); });
    const n = ticked.size, button = document.getElementById("compare");
    if (button) {
      button.textContent = `Compare ${n} run${n === 1 ? "" : "s"}`;
      button.disabled = n < 2;
    }
    sessionStorage.setItem(TICKED, JSON.stringify([...ticked]));
  }

  document.addEventListener("change", e => {
    const box = e.target;
    if (!box.classList || !box.classList.contains("tick")) return;
    if (box.checked) ticked.add(box.value); else ticked.delete(box.value);
    syncTicks();
  });

  /* The runs list: the filter box asks the server for the list again; so does a timer while a run is running.
     Only the newest answer is drawn (a slow refresh must not overwrite a filter typed since). */
  function runsList(list) {
    let asked = 0, timer = null;
    const schedule = () => {
      clearTimeout(timer);
      if (list.querySelector('[data-status="running"]')) timer = setTimeout(reload, REFRESH_MS);
    };
    async function reload() {
      const mine = ++asked;
      try {
        const res = await fetch(list.dataset.src, { cache: "no-store" });
        const text = await res.text();
        if (mine !== asked || !res.ok) return;
        list.innerHTML = text;
        list.querySelectorAll("table.sortable").forEach(window.P4.sortable);
        addTicks();
        refreshColumns();
        syncTicks();
        list.dataset.loads = String(Number(list.dataset.loads || 0) + 1);
      } finally {
        if (mine === asked) schedule();
      }
    }
    const form = document.getElementById("filter");
    if (form) form.addEventListener("submit", e => {
      e.preventDefault();
      const where = form.elements.where.value.trim();
      list.dataset.src = "/?" + new URLSearchParams(where ? { fragment: "1", where: where } : { fragment: "1" });
      history.replaceState(null, "", where ? "/?" + new URLSearchParams({ where: where }) : "/");
      reload();
    });
    schedule();
  }

  function init() {
    const list = document.getElementById("experiments");
    if (list) performance.mark("runs-table-rendered");
    if (toolbar()) {
      addTicks();
      refreshColumns();
      syncTicks();
    }
    if (list) runsList(list);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
