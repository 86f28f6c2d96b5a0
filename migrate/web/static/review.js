// Keyboard shortcuts and small conveniences for the review app. The pages work without it.
// Any element with data-key="x" is clicked when x is pressed; the queue moves a selection with j/k.
(function () {
  "use strict";

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function toggleHelp() {
    var help = document.getElementById("help");
    help.hidden = !help.hidden;
  }

  function queueRows() {
    return Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr"));
  }

  // On the queue, j/k move the highlighted row and Enter opens it.
  function moveSelection(step) {
    var rows = queueRows();
    if (rows.length === 0) { return false; }
    var at = rows.findIndex(function (r) { return r.classList.contains("current"); });
    var next = Math.min(Math.max(at + step, 0), rows.length - 1);
    if (at >= 0) { rows[at].classList.remove("current"); }
    rows[next].classList.add("current");
    rows[next].scrollIntoView({block: "nearest"});
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") { document.getElementById("help").hidden = true; return; }
    if (typing(event.target)) { return; }
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if ((event.key === "j" || event.key === "k") && moveSelection(event.key === "j" ? 1 : -1)) {
      event.preventDefault();
      return;
    }
    if (event.key === "Enter") {
      var current = document.querySelector("table.queue tr.current");
      if (current) { event.preventDefault(); window.location.assign(current.dataset.href); }
      return;
    }
    var target = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]');
    if (target) { event.preventDefault(); target.click(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Filters apply as soon as one changes; the Filter button stays for pages without script.
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    // The help link toggles the overlay instead of jumping to it.
    document.querySelectorAll('a[href="#help"]').forEach(function (link) {
      link.addEventListener("click", function (event) { event.preventDefault(); toggleHelp(); });
    });
  });
}());
