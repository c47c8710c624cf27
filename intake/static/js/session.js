/* Signed-in pages: warn before the idle timeout ends the session, let the person stay signed in, and
   never throw away a form they were filling in (WCAG 2.2.1 Timing Adjustable; HIPAA automatic logoff
   stays as it is).

   - The page says how many seconds the session has left (data-session-left on <body>). At
     data-session-warn seconds before the end, the dialog (templates/base.html) opens as a modal: focus
     moves to "Stay signed in" and screen readers announce it (role="alertdialog"). The event
     "intake:session-warning" lets the call form save its draft at that moment (js/call-form.js).
   - "Stay signed in" posts to the keepalive URL: the server starts the idle clock again.
   - Forms marked data-keep-on-timeout (the call form, the records-request form, message forms) are
     copied into this tab's sessionStorage when they are sent, with the page they came from
     (_resume_page). If the session had ended, the server sends the person to sign in and then back to
     that page with ?resumed=1, where this script puts back what was typed and shows why they had to
     sign in. Anything kept is dropped after 30 minutes, on any other page that loads signed in, and
     when the tab closes. No inline script (CSP).
*/
(function () {
  "use strict";
  var KEY = "intake:kept-form";
  var KEEP_FOR_MS = 30 * 60 * 1000;
  var body = document.body;
  var signedIn = body.hasAttribute("data-session-left");

  function storage() { try { return window.sessionStorage; } catch (e) { return null; } }
  function readKept() {
    var s = storage();
    if (!s) { return null; }
    try {
      var kept = JSON.parse(s.getItem(KEY) || "null");
      if (kept && Date.now() - kept.at < KEEP_FOR_MS) { return kept; }
    } catch (e) { /* unreadable: forget it */ }
    s.removeItem(KEY);
    return null;
  }
  function forget() { var s = storage(); if (s) { s.removeItem(KEY); } }
  function resumedFlag() { return /(?:^|[?&])resumed=1(?:&|$)/.test(window.location.search); }
  function pageWithoutFlag() {
    var query = window.location.search.replace(/^\?/, "").split("&")
      .filter(function (part) { return part && part !== "resumed=1"; }).join("&");
    return window.location.pathname + (query ? "?" + query : "");
  }

  function snapshot(form) {
    var fields = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.name === "_resume_page" || el.type === "file" ||
          el.type === "submit" || el.type === "button" || el.disabled) { return; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      if (el.tagName === "SELECT" && el.multiple) {
        Array.prototype.forEach.call(el.selectedOptions, function (o) { fields.push([el.name, o.value]); });
        return;
      }
      fields.push([el.name, el.value]);
    });
    return fields;
  }
  function keep(form) {
    var s = storage();
    if (!s) { return; }
    try {
      s.setItem(KEY, JSON.stringify({ page: pageWithoutFlag(), form: form.getAttribute("data-keep-on-timeout"),
        fields: snapshot(form), at: Date.now() }));
    } catch (e) { /* storage full or refused: the form is sent anyway */ }
  }
  function restore(form, fields) {
    var byName = {};
    fields.forEach(function (pair) { (byName[pair[0]] = byName[pair[0]] || []).push(pair[1]); });
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !(el.name in byName) || el.name === "csrf_token" || el.type === "hidden") { return; }
      var values = byName[el.name];
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = values.indexOf(el.value) >= 0;
      } else if (el.tagName === "SELECT" && el.multiple) {
        Array.prototype.forEach.call(el.options, function (o) { o.selected = values.indexOf(o.value) >= 0; });
      } else if (el.type !== "file" && el.type !== "submit" && el.type !== "button") {
        el.value = values.shift();
        byName[el.name] = values;
      }
    });
    form.dispatchEvent(new Event("change", { bubbles: true }));  // the call form recomputes and saves
  }

  // Keep a form's contents as it is sent, and tell the server which page it came from.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-keep-on-timeout")) { return; }
    var marker = form.querySelector("input[name='_resume_page']");
    if (!marker) {
      marker = document.createElement("input");
      marker.type = "hidden"; marker.name = "_resume_page";
      form.appendChild(marker);
    }
    marker.value = pageWithoutFlag();
    keep(form);
  }, true);

  function onLoad() {
    var kept = readKept();
    if (!signedIn) { return; }  // the sign-in pages: keep it for the page we come back to
    if (kept && resumedFlag() && kept.page === pageWithoutFlag()) {
      var form = document.querySelector("form[data-keep-on-timeout='" + kept.form + "']");
      if (form) {
        restore(form, kept.fields);
        var note = document.getElementById("session-resumed");
        if (note) { note.hidden = false; note.focus(); }
      }
    }
    forget();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", onLoad); } else { onLoad(); }
  if (!signedIn) { return; }

  // The idle-timeout warning.
  var dialog = document.getElementById("session-dialog");
  var left = parseInt(body.getAttribute("data-session-left"), 10);
  var warn = parseInt(body.getAttribute("data-session-warn"), 10);
  var idle = parseInt(body.getAttribute("data-session-idle"), 10);
  if (!dialog || isNaN(left) || isNaN(warn)) { return; }
  var MARGIN_MS = 2000;  // the server counts whole seconds: show "ended" only once it surely is
  var deadline = Date.now() + left * 1000 + MARGIN_MS;
  var countdown = document.getElementById("session-countdown");
  var stay = document.getElementById("session-stay");
  var warningPart = document.getElementById("session-warning-part");
  var endedPart = document.getElementById("session-ended-part");
  var signIn = document.getElementById("session-sign-in");
  var ended = false;
  var returnFocus = null;

  function open() {
    if (dialog.open) { return; }
    returnFocus = document.activeElement;
    if (typeof dialog.showModal === "function") { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
    if (stay) { stay.focus(); }
    document.dispatchEvent(new CustomEvent("intake:session-warning"));
  }
  function close() {
    if (typeof dialog.close === "function" && dialog.open) { dialog.close(); } else { dialog.removeAttribute("open"); }
    if (returnFocus && returnFocus.focus) { returnFocus.focus(); }
  }
  function end() {
    ended = true;
    // Keep what is on the page's form even though it was never sent.
    var form = document.querySelector("form[data-keep-on-timeout]");
    if (form) { keep(form); }
    if (signIn) {
      // Back to this very page: the server, finding the session over, asks for a sign-in and then
      // returns here, where the kept form is put back.
      var page = pageWithoutFlag();
      if (form) { page += (page.indexOf("?") >= 0 ? "&" : "?") + "resumed=1"; }
      signIn.href = page;
    }
    if (warningPart) { warningPart.hidden = true; }
    if (endedPart) { endedPart.hidden = false; }
    dialog.setAttribute("aria-labelledby", "session-ended-title");
    dialog.setAttribute("aria-describedby", "session-ended-text");
    open();
    if (signIn) { signIn.focus(); }
  }
  function tick() {
    if (ended) { return; }
    var remaining = Math.max(0, Math.round((deadline - MARGIN_MS - Date.now()) / 1000));
    if (Date.now() >= deadline) { end(); return; }
    if (remaining <= warn) {
      if (countdown) {
        var m = Math.floor(remaining / 60);
        var s = remaining % 60;
        countdown.textContent = m + ":" + (s < 10 ? "0" : "") + s;
      }
      open();
    } else if (dialog.open) {
      close();
    }
  }
  window.setInterval(tick, 1000);
  tick();

  if (stay) {
    stay.addEventListener("click", function () {
      fetch(body.getAttribute("data-keepalive-url"), {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": body.getAttribute("data-csrf") || "", "Accept": "application/json" }
      }).then(function (r) {
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      }).then(function (answer) {
        deadline = Date.now() + answer.seconds_left * 1000 + MARGIN_MS;
        close();
      }).catch(function () { end(); });
    });
  }
  // The dialog cannot be dismissed with Escape without choosing: Escape means "stay".
  dialog.addEventListener("cancel", function (event) {
    event.preventDefault();
    if (!ended && stay) { stay.click(); }
  });
  // A request the page's scripts made (an autosave) also restarted the server's idle clock.
  document.addEventListener("intake:session-touched", function () {
    if (!ended && !isNaN(idle)) { deadline = Math.max(deadline, Date.now() + (idle - 30) * 1000); }
  });
})();
