// crowdledger's only script: keyboard shortcuts and batch selection. Every page works
// without it; it only presses the buttons a person could press.
(function () {
  "use strict";
  function items() { return Array.prototype.slice.call(document.querySelectorAll(".item")); }
  var current = -1;
  function focusItem(i) {
    var list = items();
    if (!list.length) { return; }
    current = Math.max(0, Math.min(list.length - 1, i));
    list.forEach(function (el, j) { el.classList.toggle("current", j === current); });
    list[current].scrollIntoView({ block: "nearest" });
  }
  function box(el) { return el ? el.querySelector("input[type=checkbox][name=submission]") : null; }
  function press(action) {
    var form = document.getElementById("batch");
    if (!form) { return; }
    var checked = form.querySelectorAll("input[name=submission]:checked");
    if (!checked.length && current >= 0) {
      var b = box(items()[current]);
      if (b) { b.checked = true; }
    }
    var button = form.querySelector("button[name=action][value='" + action + "']");
    if (button) { button.click(); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("#batch input[name=submission]").forEach(function (b) { b.checked = all.checked; });
      });
    }
  });
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var keys = { a: "approve", s: "soft-reject", r: "reject", f: "flag" };
    if (event.key === "j") { focusItem(current + 1); }
    else if (event.key === "k") { focusItem(current - 1); }
    else if (event.key === "x") { var b = box(items()[current]); if (b) { b.checked = !b.checked; } }
    else if (event.key === "/") { var find = document.querySelector(".find input"); if (find) { find.focus(); } }
    else if (keys[event.key]) { press(keys[event.key]); }
    else { return; }
    event.preventDefault();
  });
})();
