/* The intake form's helpers: call timer, live overdose flag, draft autosave and the referral
   search. Everything here is an enhancement: the form works without it. No inline script
   (CSP), no styles set from script (only the hidden attribute and classes). */
(function () {
  "use strict";
  var form = document.getElementById("call-form");
  if (!form) { return; }

  var BENZOS = ["clonazepam", "other_benzodiazepine"];
  var DEPRESSANTS = ["alcohol", "opioids"];
  var AUTOSAVE_DELAY_MS = 3000;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Running call timer (elapsed mm:ss since the server's start time).
  var timer = document.getElementById("call-timer");
  if (timer) {
    var started = Date.parse(timer.getAttribute("data-started-at"));
    var tick = function () {
      var secs = Math.max(0, Math.floor((Date.now() - started) / 1000));
      var m = Math.floor(secs / 60);
      timer.textContent = pad(m) + ":" + pad(secs % 60);
    };
    tick();
    window.setInterval(tick, 1000);
  }

  // Co-use flag: a benzodiazepine with alcohol or opioids, shown as soon as it is ticked.
  var flag = document.getElementById("overdose-flag");
  function checkedSubstances() {
    var boxes = form.querySelectorAll("input[name='substances']:checked");
    return Array.prototype.map.call(boxes, function (b) { return b.value; });
  }
  function updateOverdose() {
    var s = checkedSubstances();
    var benzo = s.some(function (v) { return BENZOS.indexOf(v) >= 0; });
    var dep = s.some(function (v) { return DEPRESSANTS.indexOf(v) >= 0; });
    if (flag) { flag.hidden = !(benzo && dep); }
  }

  // Autosave: a few seconds after the last change, post the form (CSRF token in the header).
  var autosaveUrl = form.getAttribute("data-autosave-url");
  var status = document.getElementById("autosave-status");
  var riskLevel = document.getElementById("risk-level");
  var csrfInput = form.querySelector("input[name='csrf_token']");
  var pending = null;
  var saving = false;
  var again = false;

  function encodedForm() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token" && key !== "action") { params.append(key, value); }
    });
    return params;
  }

  function save() {
    pending = null;
    if (saving) { again = true; return; }
    saving = true;
    fetch(autosaveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfInput ? csrfInput.value : "", "Accept": "application/json" },
      body: encodedForm()
    }).then(function (response) {
      if (!response.ok) { throw new Error("status " + response.status); }
      return response.json();
    }).then(function (body) {
      var when = new Date(body.saved_at);
      var shown;
      try {
        // The facility's clock, like the start time above (not the browser's own zone).
        shown = when.toLocaleTimeString("en-US", { timeZone: form.getAttribute("data-timezone") || undefined, hour12: false });
      } catch (e) {
        shown = pad(when.getHours()) + ":" + pad(when.getMinutes()) + ":" + pad(when.getSeconds());
      }
      if (status) { status.textContent = "Draft saved at " + shown + "."; }
      if (riskLevel && body.risk_level) {
        riskLevel.textContent = body.risk_level;
        riskLevel.setAttribute("data-level", body.risk_level);
      }
      if (flag && typeof body.overdose_risk === "boolean") { flag.hidden = !body.overdose_risk; }
    }).catch(function () {
      if (status) { status.textContent = "Draft not saved yet; use Save draft."; }
    }).then(function () {
      saving = false;
      if (again) { again = false; schedule(); }
    });
  }

  function schedule() {
    if (!autosaveUrl) { return; }
    if (pending) { window.clearTimeout(pending); }
    pending = window.setTimeout(save, AUTOSAVE_DELAY_MS);
  }

  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "substances") { updateOverdose(); }
    schedule();
  });
  form.addEventListener("input", schedule);
  form.addEventListener("submit", function () { if (pending) { window.clearTimeout(pending); pending = null; } });

  // Referrals: search the directory as you type; each result is a button that adds a row.
  var list = document.getElementById("referral-list");
  var box = document.getElementById("referral-search-box");
  var plain = document.getElementById("referral-plain");
  var search = document.getElementById("referral-search");
  var results = document.getElementById("referral-results");
  var searchUrl = form.getAttribute("data-search-url");
  var statusTemplate = form.querySelector("select[name='referral_add_status']");

  function wireRemove(row) {
    var button = row.querySelector(".referral-remove");
    if (!button) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var next = row.nextElementSibling || row.previousElementSibling;
      row.parentNode.removeChild(row);
      schedule();
      if (next) { var f = next.querySelector("select"); if (f) { f.focus(); } } else if (search) { search.focus(); }
    });
  }

  function addReferral(item) {
    if (list.querySelector("input[name='referral_resource_id'][value='" + item.id + "']")) { return null; }
    var row = document.createElement("li");
    row.className = "referral-row d-flex flex-wrap gap-2 align-items-center mb-2";
    var hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = "referral_resource_id"; hidden.value = String(item.id);
    var name = document.createElement("span");
    name.className = "referral-name"; name.textContent = item.name;
    var label = document.createElement("label");
    label.className = "visually-hidden"; label.htmlFor = "referral-status-" + item.id;
    label.textContent = "Status of the referral to " + item.name;
    var select = document.createElement("select");
    select.className = "form-select form-select-sm w-auto"; select.name = "referral_status";
    select.id = "referral-status-" + item.id;
    Array.prototype.forEach.call(statusTemplate.options, function (o) {
      var option = document.createElement("option");
      option.value = o.value; option.textContent = o.textContent;
      select.appendChild(option);
    });
    var remove = document.createElement("button");
    remove.type = "button"; remove.className = "btn btn-sm btn-outline-secondary referral-remove";
    remove.textContent = "Remove " + item.name;
    row.appendChild(hidden); row.appendChild(name); row.appendChild(label); row.appendChild(select); row.appendChild(remove);
    list.appendChild(row);
    wireRemove(row);
    schedule();
    return select;
  }

  if (list && box && search && results && searchUrl && statusTemplate) {
    box.hidden = false;
    if (plain) { plain.hidden = true; }
    Array.prototype.forEach.call(list.querySelectorAll(".referral-row"), wireRemove);
    var searchTimer = null;
    var lastQuery = null;
    var runSearch = function () {
      var q = search.value.trim();
      if (q === lastQuery) { return; }
      lastQuery = q;
      if (q.length < 2) { results.textContent = ""; return; }
      fetch(searchUrl + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
        .then(function (body) {
          if (search.value.trim() !== q) { return; }
          results.textContent = "";
          var found = body.results || [];
          if (!found.length) {
            var none = document.createElement("li"); none.textContent = "No match.";
            results.appendChild(none);
            return;
          }
          found.slice(0, 10).forEach(function (item) {
            var li = document.createElement("li");
            var button = document.createElement("button");
            button.type = "button"; button.className = "btn btn-link p-0 text-start";
            button.textContent = "Add " + item.name + " (" + (item.kind_label || item.kind) + (item.city ? ", " + item.city : "") + ")";
            button.addEventListener("click", function () {
              var select = addReferral(item);
              results.textContent = ""; search.value = ""; lastQuery = null;
              if (select) { select.focus(); } else { search.focus(); }
            });
            li.appendChild(button);
            results.appendChild(li);
          });
        })
        .catch(function () { results.textContent = "The directory could not be searched; try again."; });
    };
    search.addEventListener("input", function (event) {
      event.stopPropagation();  // typing a search is not a change to the call
      if (searchTimer) { window.clearTimeout(searchTimer); }
      searchTimer = window.setTimeout(runSearch, 250);
    });
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();  // Enter searches, it never submits the call
        if (searchTimer) { window.clearTimeout(searchTimer); }
        runSearch();
      }
    });
  }
  updateOverdose();
})();
