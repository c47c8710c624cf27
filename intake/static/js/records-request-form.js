// The records-request form: hide the sections that do not apply to the choices made.
// Without this script every section stays visible, each with its "only if" hint.
(function () {
  "use strict";
  var form = document.getElementById("request-form");
  if (!form) { return; }

  function chosen(name) {
    var checked = form.querySelector('input[type="radio"][name="' + name + '"]:checked');
    return checked ? checked.value : null;
  }

  function update() {
    form.querySelectorAll("[data-show-if], [data-show-unless]").forEach(function (section) {
      var rule = section.getAttribute("data-show-if") || section.getAttribute("data-show-unless");
      var parts = rule.split("=");
      var matches = chosen(parts[0]) === parts[1];
      var show = section.hasAttribute("data-show-if") ? matches : !matches;
      // A section holding an error stays visible, so the message is never hidden.
      if (section.querySelector(".is-invalid")) { show = true; }
      section.hidden = !show;
    });
  }

  form.addEventListener("change", update);
  update();
})();
