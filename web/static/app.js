// Refreshes the overview's "Running now" section from /api/running every
// few seconds. The page works without it: the server renders the same
// section. Only textContent is set, so no machine name or source name is
// ever parsed as HTML.
"use strict";
(function () {
  var running = document.getElementById("running");
  var waiting = document.getElementById("waiting");
  var updated = document.getElementById("live-updated");
  if (!running || !waiting || !window.fetch) {
    return;
  }
  var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  function bytes(n) {
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // As the server writes durations (render.go, formatSeconds).
  function age(s) {
    if (s > 0 && s < 10) { return s.toFixed(2) + "s"; }
    s = Math.max(0, Math.floor(s));
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m" + pad(s % 60) + "s"; }
    if (s < 172800) { return Math.floor(s / 3600) + "h" + pad(Math.floor(s / 60) % 60) + "m"; }
    return Math.floor(s / 86400) + "d" + pad(Math.floor(s / 3600) % 24) + "h";
  }
  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function machineCell(tr, b) {
    var td = document.createElement("td");
    var a = document.createElement("a");
    a.href = "/machine/" + encodeURIComponent(b.machine);
    a.textContent = b.unit || b.machine;
    td.appendChild(a);
    tr.appendChild(td);
  }
  function fill(table, rows, empty, columns, row) {
    var tbody = document.createElement("tbody");
    rows.forEach(function (b) {
      var tr = document.createElement("tr");
      machineCell(tr, b);
      row(tr, b);
      tbody.appendChild(tr);
    });
    if (rows.length === 0) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      cell(tr, empty).colSpan = columns;
      tbody.appendChild(tr);
    }
    table.replaceChild(tbody, table.tBodies[0]);
  }
  function refresh() {
    fetch("/api/running", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (doc) {
        fill(running, doc.running, "No backup running.", 6, function (tr, b) {
          cell(tr, b.source);
          cell(tr, bytes(b.bytes));
          cell(tr, bytes(b.bytes_per_second) + "/s");
          cell(tr, age(b.elapsed_seconds));
          cell(tr, b.files === undefined ? "" : String(b.files));
        });
        fill(waiting, doc.waiting, "None waiting.", 3, function (tr, b) {
          cell(tr, b.source);
          cell(tr, age(b.elapsed_seconds));
        });
        if (updated) {
          updated.textContent = "Updated " + new Date(doc.now).toLocaleTimeString() + " (live)";
        }
      })
      .catch(function (err) {
        if (updated) { updated.textContent = "Live update failed: " + err.message; }
      })
      .finally(function () { window.setTimeout(refresh, 2000); });
  }
  window.setTimeout(refresh, 2000);
})();
