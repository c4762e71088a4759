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
