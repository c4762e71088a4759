// The console's only script besides htmx (no inline script: the Content-Security-Policy forbids it).
"use strict";

// A checkbox with data-select-all="<selector>" ticks or clears every box the selector finds.
document.addEventListener("change", function (event) {
  var selector = event.target.getAttribute && event.target.getAttribute("data-select-all");
  if (!selector) return;
  document.querySelectorAll(selector).forEach(function (box) {
    box.checked = event.target.checked;
  });
});

// --- Layout for every page (console): phone menu, focus kept across htmx swaps, tables. ---
document.documentElement.classList.add("js");

// The "Menu" button of a narrow screen opens and closes the navigation (CSS hides it while
// aria-expanded is "false"; without this script the navigation simply stays open).
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest(".nav-toggle");
  if (!button) return;
  var open = button.getAttribute("aria-expanded") === "true";
  button.setAttribute("aria-expanded", open ? "false" : "true");
});
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape") return;
  var button = document.querySelector('.nav-toggle[aria-expanded="true"]');
  if (!button) return;
  button.setAttribute("aria-expanded", "false");
  button.focus();
});

// Focus after an htmx swap: when the focused element was replaced, focus the new element with
// the same id; failing that, the region that was swapped (made focusable with tabindex=-1), so
// a keyboard user is never dropped back to <body>.
var focusBeforeSwap = null;
document.addEventListener("htmx:beforeSwap", function (event) {
  var active = document.activeElement;
  if (!active || active === document.body) { focusBeforeSwap = null; return; }
  var target = event.detail.target;
  focusBeforeSwap = { element: active, id: active.id, regionId: target && target.id };
});
document.addEventListener("htmx:afterSettle", function () {
  var before = focusBeforeSwap;
  focusBeforeSwap = null;
  if (!before || document.contains(before.element)) return;
  var next = before.id && document.getElementById(before.id);
  if (!next && before.regionId) {
    next = document.getElementById(before.regionId);
    if (next && !next.hasAttribute("tabindex") && next.tabIndex < 0) next.setAttribute("tabindex", "-1");
  }
  if (next) next.focus({ preventScroll: true });
});

// A table wider than its container scrolls sideways; one that holds nothing focusable gets
// tabindex=0 so it can be scrolled from the keyboard.
function markScrollableTables(root) {
  (root || document).querySelectorAll("table.grid, .table-scroll").forEach(function (box) {
    if (box.scrollWidth <= box.clientWidth || box.hasAttribute("tabindex")) return;
    if (box.querySelector("a[href], button, input, select, textarea, [tabindex]")) return;
    box.setAttribute("tabindex", "0");
  });
}
document.addEventListener("DOMContentLoaded", function () { markScrollableTables(document); });
document.addEventListener("htmx:afterSettle", function (event) { markScrollableTables(event.detail.elt); });

// --- Cleanup: one confirmation per destructive action, saying what will happen. ---
// A file size as Django's filesizeformat writes it (1024-based, one decimal).
function consoleFileSize(bytes) {
  var units = ["KB", "MB", "GB", "TB", "PB"];
  if (bytes < 1024) return bytes + (bytes === 1 ? " byte" : " bytes");
  var size = bytes / 1024, unit = 0;
  while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
  return size.toFixed(1) + " " + units[unit];
}
function consoleCounted(n, singular, plural) {
  return n.toLocaleString("en") + " " + (n === 1 ? singular : plural);
}
// What a button with data-confirm-selection="<selector of ticked boxes>" would act on: the
// ticked rows (data-bytes, data-repository), or every matching check when #all-matching is ticked.
function consoleSelection(button) {
  var all = document.getElementById("all-matching");
  if (all && all.checked && button.id === "approve-selected") {
    return {
      count: Number(all.dataset.count), bytes: Number(all.dataset.bytes),
      repositories: Number(all.dataset.repositories)
    };
  }
  var boxes = document.querySelectorAll(button.getAttribute("data-confirm-selection") ||
                                        button.getAttribute("data-needs-selection"));
  var bytes = 0, repositories = {};
  boxes.forEach(function (box) {
    bytes += Number(box.dataset.bytes || 0);
    repositories[box.dataset.repository] = true;
  });
  return { count: boxes.length, bytes: bytes, repositories: Object.keys(repositories).length };
}
function consoleDeleteQuestion(selection) {
  return "Delete " + consoleCounted(selection.count, "image", "images") + ", " +
    consoleFileSize(selection.bytes) + ", from " +
    consoleCounted(selection.repositories, "repository", "repositories") + "?";
}
// Buttons that act on a selection are marked disabled while nothing is selected (aria-disabled,
// not disabled: a focused button keeps the focus after an action empties the selection), and
// send nothing then.
function consoleUpdateSelectionButtons() {
  document.querySelectorAll("[data-confirm-selection], [data-needs-selection]").forEach(function (button) {
    button.setAttribute("aria-disabled", consoleSelection(button).count === 0 ? "true" : "false");
  });
}
document.addEventListener("change", consoleUpdateSelectionButtons);
document.addEventListener("DOMContentLoaded", consoleUpdateSelectionButtons);
document.addEventListener("htmx:afterSettle", consoleUpdateSelectionButtons);
document.addEventListener("htmx:confirm", function (event) {
  var button = event.detail.elt;
  if (!button.hasAttribute) return;
  if (button.hasAttribute("data-needs-selection") && consoleSelection(button).count === 0) {
    event.preventDefault();
    return;
  }
  if (!button.hasAttribute("data-confirm-selection")) return;
  event.preventDefault();
  var selection = consoleSelection(button);
  if (selection.count === 0) return;
  if (window.confirm(consoleDeleteQuestion(selection))) event.detail.issueRequest(true);
});
// A plain form with data-confirm asks once before it is sent.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
