// A form sent back with problems: focus starts on its error summary (templates/_macros/forms.html,
// which loads this file), or on the invalid field of a one-field form, so a keyboard or screen-reader
// user learns first what went wrong; a link in the summary moves focus to its field (the first option
// of a group of radio buttons or checkboxes). A file, never inline: the CSP allows no inline script.
(function () {
  "use strict";
  if (window.intakeFormErrors) { return; }  // one summary per form: the file may be named twice
  window.intakeFormErrors = true;

  function start() {
    var target = document.querySelector(".error-summary") || document.querySelector("[aria-invalid='true']");
    if (!target) { return; }
    // An autofocus field (the sign-in e-mail, say) must not take focus away from the problems.
    document.querySelectorAll("[autofocus]").forEach(function (el) { el.removeAttribute("autofocus"); });
    target.focus();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest(".error-summary a[href^='#']") : null;
    var target = link ? document.getElementById(link.getAttribute("href").slice(1)) : null;
    if (!target) { return; }
    var field = target.tagName === "FIELDSET"
      ? target.querySelector("input:not([type=hidden]), select, textarea") : target;
    if (!field) { return; }
    event.preventDefault();
    // Bring the field's label or legend into view with it, not just the input at the very top.
    var group = target.tagName === "FIELDSET" ? target : (field.closest(".mb-3, .form-check, fieldset") || field);
    group.scrollIntoView();
    field.focus({preventScroll: true});
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
