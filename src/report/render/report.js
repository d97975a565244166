/* The reconciliation report's script, inlined into the page. It only
   enhances tables already written in the markup: sorting by a column
   header (numbers as numbers), a filter box per section with an
   "N of M rows" counter, and zebra stripes that follow the visible rows.
   It marks <body data-ready="1"> last, so a test can tell it ran. */
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)$/;

  function number(s) {
    var t = s.trim();
    return NUMBER.test(t) ? parseFloat(t) : null;
  }

  function compare(a, b) {
    var x = number(a), y = number(b);
    if (x !== null && y !== null) return x - y;
    return collator.compare(a, b);
  }

  function cellText(row, i) {
    var c = row.cells[i];
    return c ? c.textContent : "";
  }

  function stripe(body) {
    var n = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      if (r.hidden) return;
      r.classList.toggle("alt", n % 2 === 1);
      n += 1;
    });
  }

  function sortBy(table, index, th) {
    var body = table.tBodies[0];
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    var sign = dir === "ascending" ? 1 : -1;
    table.querySelectorAll("thead th[aria-sort]").forEach(function (h) {
      h.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", dir);
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellText(a, index).trim(), y = cellText(b, index).trim();
      // An empty cell is a missing value, not a small one: last either way.
      if (x === "" && y !== "") return 1;
      if (y === "" && x !== "") return -1;
      return sign * compare(x, y) || Number(a.dataset.row) - Number(b.dataset.row);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    stripe(body);
  }

  function sortable(table) {
    var head = table.tHead;
    if (!head || !head.rows.length) return;
    Array.prototype.forEach.call(head.rows[0].cells, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.title = "Sort by this column";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () { sortBy(table, index, th); });
    });
  }

  function filterable(section) {
    var input = section.querySelector("input[data-filter]");
    var counter = section.querySelector("[data-count]");
    var table = section.querySelector("table");
    if (!input || !counter || !table) return;
    var rows = table.tBodies[0].rows;
    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      Array.prototype.forEach.call(rows, function (r) {
        var text = r.textContent.toLowerCase();
        var match = words.every(function (w) { return text.indexOf(w) !== -1; });
        r.hidden = !match;
        if (match) shown += 1;
      });
      counter.textContent = shown + " of " + rows.length + " rows";
      stripe(table.tBodies[0]);
    }
    input.addEventListener("input", apply);
    input.closest(".tools").hidden = false;
    apply();
  }

  document.body.classList.add("js");
  document.querySelectorAll("table[data-sortable]").forEach(sortable);
  document.querySelectorAll("section.finding").forEach(filterable);
  document.body.dataset.ready = "1";
})();
