// The confirmation after a form was sent (templates/base.html, #flash-messages): focus moves to it
// when the page loads, so a screen reader reads what just happened first and the keyboard carries
// on from there instead of from the top of the page (WCAG 4.1.3). A page with an error summary
// keeps focus there (js/form-errors.js), and an autofocus field gives way to the confirmation.
// A file, never inline: the CSP allows no inline script.
(function () {
  "use strict";

  function start() {
    var box = document.getElementById("flash-messages");
    if (!box || document.querySelector(".error-summary, [aria-invalid='true']")) { return; }
    document.querySelectorAll("[autofocus]").forEach(function (el) { el.removeAttribute("autofocus"); });
    box.focus();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
