// Sentry dashboard: live updates over server-sent events, and keyboard navigation.
// Pages work without this script; it only saves reloads and mouse trips.
(function () {
  "use strict";

  // Copy buttons copy the text of the element named by data-copy (it stays selectable without them).
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    var target = document.getElementById(b.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () { b.textContent = "Copied"; }, function () {
        var r = document.createRange(); r.selectNodeContents(target);
        var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
        b.textContent = "Press Ctrl+C";
      });
    });
  });

  // Filter selects submit when changed.
  document.addEventListener("change", function (e) {
    if (e.target.classList && e.target.classList.contains("autosubmit") && e.target.form) e.target.form.submit();
  });

  // Live updates: the element with data-live gets its list reloaded when groups change.
  var live = document.querySelector("[data-live]");
  if (live && window.EventSource) {
    var pending = null;
    var firstPage = !/[?&]cursor=/.test(location.search);
    var reload = function () {
      pending = null;
      if (live.hasAttribute("data-live-reload")) { location.reload(); return; }
      if (!firstPage) { var b = document.getElementById("live-banner"); if (b) { b.hidden = false; b.querySelector("a").href = location.href.replace(/([?&])cursor=[^&]*&?/, "$1"); } return; }
      var url = location.pathname + location.search + (location.search ? "&" : "?") + "fragment=1";
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
        if (html === null) return;
        var old = document.getElementById("stream-rows");
        var before = {};
        if (old) old.querySelectorAll(".group-row").forEach(function (r) { before[r.dataset.group] = r.querySelector(".count").textContent; });
        var tpl = document.createElement("template");
        tpl.innerHTML = html;
        var fresh = tpl.content.getElementById("stream-rows");
        if (!fresh || !old) return;
        fresh.querySelectorAll(".group-row").forEach(function (r) {
          if (before[r.dataset.group] !== r.querySelector(".count").textContent) r.classList.add("fresh");
        });
        old.replaceWith(fresh);
        document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
      });
    };
    var es = new EventSource(live.getAttribute("data-live"));
    es.addEventListener("hello", function () { document.body.dataset.live = "connected"; });
    es.addEventListener("groups", function () { if (!pending) pending = setTimeout(reload, 300); });
  }

  // The Logs page's first page refreshes its list every 5 s while it is shown (not while a
  // log's details are open, so the reader keeps their place).
  var poll = document.querySelector("[data-poll]");
  if (poll && !/[?&]cursor=/.test(location.search)) {
    setInterval(function () {
      if (document.hidden || poll.querySelector("details[open]")) return;
      var url = location.pathname + location.search + (location.search ? "&" : "?") + "fragment=1";
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
        var old = document.getElementById("log-rows");
        if (html === null || !old) return;
        var tpl = document.createElement("template");
        tpl.innerHTML = html;
        var fresh = tpl.content.getElementById("log-rows");
        if (fresh && fresh.innerHTML !== old.innerHTML) old.replaceWith(fresh);
        document.body.dataset.logRefreshes = String(Number(document.body.dataset.logRefreshes || 0) + 1);
      });
    }, 5000);
  }

  // Keyboard: j/k move through the stream, o or Enter opens, / focuses the search box.
  var selected = -1;
  document.addEventListener("keydown", function (e) {
    var t = e.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || e.metaKey || e.ctrlKey || e.altKey) return;
    var rows = document.querySelectorAll(".group-row");
    if (e.key === "/") { var s = document.getElementById("search"); if (s) { e.preventDefault(); s.focus(); } return; }
    if (!rows.length) return;
    if (e.key === "j" || e.key === "k") {
      if (rows[selected]) rows[selected].classList.remove("selected");
      selected = Math.max(0, Math.min(rows.length - 1, selected + (e.key === "j" ? 1 : -1)));
      rows[selected].classList.add("selected");
      rows[selected].scrollIntoView({ block: "nearest" });
    } else if ((e.key === "o" || e.key === "Enter") && rows[selected]) {
      location.href = rows[selected].querySelector("a.title").href;
    }
  });
})();
