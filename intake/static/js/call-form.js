/* The intake form's helpers: call timer, the live risk panel (the server's rule table, evaluated here
   by js/risk-rules.js on every answer), draft autosave (at once when the level turns high or imminent,
   so supervisors see the call on the urgent queue while it is live), the supervisors' notes, the
   repeat-caller notice and the referral search. Everything here is an enhancement: the form works
   without it. No inline script (CSP), no styles set from script (only the hidden attribute and classes). */
(function () {
  "use strict";
  var form = document.getElementById("call-form");
  if (!form) { return; }

  var AUTOSAVE_DELAY_MS = 3000;
  var URGENT_SAVE_DELAY_MS = 200;
  var ANNOUNCE_EVERY_MS = 5 * 60 * 1000;  // "draft saved" is read out at most every five minutes
  var LIVE_POLL_MS = 15000;
  var URGENT = ["high", "imminent"];

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function json(id) {
    var el = document.getElementById(id);
    try { return el ? JSON.parse(el.textContent) : null; } catch (e) { return null; }
  }
  var table = json("risk-rules");
  var labels = json("risk-labels") || { levels: {}, questions: {} };

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

  // The live risk panel.
  var panel = document.getElementById("risk-panel");
  var flag = document.getElementById("overdose-flag");
  var riskLevel = document.getElementById("risk-level");
  var requiredBox = document.getElementById("risk-required");
  var requiredList = document.getElementById("risk-required-list");
  var whyBox = document.getElementById("risk-why-box");
  var whyList = document.getElementById("risk-why");
  var unaskedBox = document.getElementById("unasked-box");
  var shownLevel = riskLevel ? riskLevel.getAttribute("data-level") : "none";

  function checked(name) {
    var boxes = form.querySelectorAll("input[name='" + name + "']:checked");
    return Array.prototype.map.call(boxes, function (b) { return b.value; });
  }
  function currentFacts() {
    var answers = {};
    (table ? table.questions : []).forEach(function (q) {
      var value = checked(q)[0] || "";
      answers[q] = value === "yes" || value === "no" ? value : "unanswered";
    });
    return { answers: answers, symptoms: checked("withdrawal_symptoms"), substances: checked("substances") };
  }
  function fill(list, items) {
    list.textContent = "";
    items.forEach(function (text) { var li = document.createElement("li"); li.textContent = text; list.appendChild(li); });
  }
  function showAssessment(result) {
    if (!panel || !result) { return; }
    if (riskLevel && result.level !== shownLevel) {
      riskLevel.textContent = labels.levels[result.level] || result.level;
      riskLevel.setAttribute("data-level", result.level);
      panel.setAttribute("data-level", result.level);
      panel.className = panel.className.replace(/\brisk-(none|low|moderate|high|imminent)\b/, "risk-" + result.level);
      Array.prototype.forEach.call(panel.querySelectorAll(".risk-protocol"), function (ol) {
        ol.hidden = ol.getAttribute("data-level") !== result.level;
      });
      shownLevel = result.level;
    }
    if (flag) { flag.hidden = !result.overdose_risk; }
    if (requiredBox && requiredList) {
      fill(requiredList, result.unanswered_required.map(function (q) { return labels.questions[q] || q; }));
      requiredBox.hidden = result.unanswered_required.length === 0;
    }
    if (whyBox && whyList && table) {
      fill(whyList, table.rules.filter(function (r) { return result.matched.indexOf(r.id) >= 0; })
        .map(function (r) { return r.why; }));
      whyBox.hidden = result.matched.length === 0;
    }
    (table ? table.questions : []).forEach(function (q) {
      var group = document.getElementById(q);
      if (group) { group.classList.toggle("risk-required", result.unanswered_required.indexOf(q) >= 0); }
    });
    if (unaskedBox) {
      var reason = form.querySelector("select[name='unasked_reason']");
      unaskedBox.hidden = result.unanswered_required.length === 0 && !(reason && reason.value);
    }
  }
  function updateRisk() {
    if (!table || !window.intakeRisk) { return null; }
    var result = window.intakeRisk.evaluate(table, currentFacts());
    showAssessment(result);
    return result;
  }

  // Autosave: a few seconds after the last change, post the form (CSRF token in the header).
  var autosaveUrl = form.getAttribute("data-autosave-url");
  var status = document.getElementById("autosave-status");
  // What a screen reader hears (a polite, visually hidden live region): not every save after each
  // pause in typing, but a change (saved / not saved) at once and "saved" again at most every
  // ANNOUNCE_EVERY_MS. The visible line beside the timer shows the latest save time regardless.
  var announcer = document.getElementById("autosave-announce");
  var lastAnnounced = 0;
  var lastKind = null;

  var reports = 0;

  function report(kind, text) {
    reports += 1;
    if (status) { status.textContent = text; status.setAttribute("data-reports", String(reports)); }
    var now = Date.now();
    if (!announcer || (kind === lastKind && now - lastAnnounced < ANNOUNCE_EVERY_MS)) { return; }
    announcer.textContent = text;
    lastAnnounced = now;
    lastKind = kind;
  }
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
      document.dispatchEvent(new CustomEvent("intake:session-touched"));
      report("saved", (labels.saved || "Draft saved at %(time)s.").replace("%(time)s", body.saved_at_label));
      // The server's own computation wins if the two ever disagree.
      if (body.level) { showAssessment(body); }
    }).catch(function () {
      report("not_saved", labels.not_saved || "Draft not saved yet; use Save draft.");
    }).then(function () {
      saving = false;
      if (again) { again = false; schedule(); }
    });
  }

  function schedule(delay) {
    if (!autosaveUrl) { return; }
    if (pending) { window.clearTimeout(pending); }
    pending = window.setTimeout(save, typeof delay === "number" ? delay : AUTOSAVE_DELAY_MS);
  }

  form.addEventListener("change", function () {
    var result = updateRisk();
    // High or imminent: save now, so the call reaches the supervisors' urgent queue while it is live.
    schedule(result && URGENT.indexOf(result.level) >= 0 ? URGENT_SAVE_DELAY_MS : undefined);
  });
  form.addEventListener("input", function () { schedule(); });
  // The session is about to end (js/session.js): keep what is on the form now.
  document.addEventListener("intake:session-warning", function () { if (autosaveUrl) { save(); } });

  // The supervisors' notes, while the call is live: a read-only poll.
  var liveUrl = form.getAttribute("data-live-url");
  var notesBox = document.getElementById("supervisor-notes");
  var notesList = document.getElementById("supervisor-notes-list");
  function poll() {
    fetch(liveUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
      .then(function (body) {
        (body.notes || []).forEach(function (n) {
          if (notesList.querySelector("[data-note-id='" + n.id + "']")) { return; }
          var li = document.createElement("li");
          li.className = "supervisor-note"; li.setAttribute("data-note-id", String(n.id));
          var when = document.createElement("strong"); when.textContent = n.at;
          var text = document.createElement("span"); text.className = "text-break"; text.textContent = n.body;
          li.appendChild(when); li.appendChild(document.createTextNode(" " + n.author + ": ")); li.appendChild(text);
          notesList.appendChild(li);
          notesBox.hidden = false;
        });
      }).catch(function () { /* the next poll tries again */ });
  }
  if (liveUrl && notesBox && notesList) { window.setInterval(poll, LIVE_POLL_MS); }

  // Repeat caller: as soon as a complete number is typed, ask (POST: the number stays out of URLs).
  var phone = form.querySelector("input[name='caller_phone']");
  var repeatBox = document.getElementById("repeat-caller");
  var repeatUrl = form.getAttribute("data-repeat-url");
  var lastChecked = null;
  function digits(text) { var d = (text || "").replace(/[^0-9]/g, ""); return d.length === 11 && d[0] === "1" ? d.slice(1) : d; }
  function checkRepeat() {
    var number = digits(phone.value);
    if (number.length !== 10 || number === lastChecked) { if (number.length !== 10) { repeatBox.textContent = ""; } return; }
    lastChecked = number;
    var params = new URLSearchParams();
    params.append("phone", number);
    var call = form.getAttribute("data-call-id");
    if (call) { params.append("call_id", call); }
    fetch(repeatUrl, { method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfInput ? csrfInput.value : "", "Accept": "application/json" }, body: params })
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
      .then(function (body) {
        repeatBox.textContent = "";
        if (!body.count) { return; }
        var p = document.createElement("p");
        p.className = "alert alert-info py-1 px-2 mt-1 mb-0 small";
        p.appendChild(document.createTextNode(body.message + " "));
        if (body.url) {
          var a = document.createElement("a"); a.href = body.url; a.textContent = body.link_text;
          a.target = "_blank"; a.rel = "noopener";
          p.appendChild(a);
        }
        repeatBox.appendChild(p);
      }).catch(function () { lastChecked = null; });
  }
  if (phone && repeatBox && repeatUrl) {
    phone.addEventListener("input", checkRepeat);
    checkRepeat();
  }
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
      var zipInput = form.querySelector("input[name='zip']");
      var near = zipInput && /^[0-9]{5}$/.test(zipInput.value) ? "&near=" + zipInput.value : "";
      fetch(searchUrl + "?q=" + encodeURIComponent(q) + near, { credentials: "same-origin", headers: { "Accept": "application/json" } })
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
            var facts = [item.kind_label || item.kind];
            if (item.city) { facts.push(item.city); }
            if (item.distance_label) { facts.push(item.distance_label); }
            button.textContent = "Add " + item.name + " (" + facts.join(", ") + ")";
            button.addEventListener("click", function () {
              var select = addReferral(item);
              results.textContent = ""; search.value = ""; lastQuery = null;
              if (select) { select.focus(); } else { search.focus(); }
            });
            li.appendChild(button);
            var extra = [item.phone, item.hours].filter(function (x) { return x; }).join(" · ");
            if (extra) {
              var small = document.createElement("span");
              small.className = "d-block small text-body-secondary"; small.textContent = extra;
              li.appendChild(small);
            }
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
  updateRisk();
})();
