/* The first metric points of a page's runs, asked for while ECharts (0.64 MB) is still being compiled: this
   tiny script, first in the page's head, runs as soon as it arrives (async), ui.js takes the answers (P4Prefetch.take) for its first poll. */
(function () {
  "use strict";
  const me = document.currentScript, pending = new Map();
  for (const key of JSON.parse(me.dataset.runs)) {
    const url = firstPoll(key);
    pending.set(url, fetch(url, { cache: "no-store" }));
  }
  function firstPoll(key) { return `/api/points/${key.split("/").map(encodeURIComponent).join("/")}?offsets=${encodeURIComponent("{}")}`; }
  /* The answer to ``url`` already under way, once; undefined for any other request. */
  function take(url) { const p = pending.get(url); pending.delete(url); return p; }
  window.P4Prefetch = { take: take };
})();
