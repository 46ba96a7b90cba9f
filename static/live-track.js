// Live-Track page behaviour: live refresh over Server-Sent Events, pause,
// click-to-expand rows, opt-in notifications, the theme toggle and the filter box.
// Without this script the page still works: every view is server-rendered.
(function () {
  "use strict";

  var EVENTS_URL = "/api/live_sessions/events";
  var RECONNECT_MS = 3000;
  // The server's vocabulary (src/webui/vocabulary.py): labels and real-money modes.
  var VOCABULARY = JSON.parse(document.body ? document.body.getAttribute("data-vocabulary") || "{}" : "{}");
  var STATUSES = VOCABULARY.statuses || {};
  var REAL_MONEY = VOCABULARY.real_money_modes || [];
  var WIDE_SCREEN = "(min-width: 481px)"; // the phone breakpoint of live-track.css

  function $(id) { return document.getElementById(id); }

  // --- Theme -------------------------------------------------------------
  function setupTheme() {
    var button = $("theme-toggle");
    if (!button) { return; }
    var order = ["auto", "dark", "light"];
    var names = { auto: "Auto", dark: "Dunkel", light: "Hell" };
    function current() { return document.documentElement.getAttribute("data-theme") || "auto"; }
    var name = button.querySelector(".theme-name") || button;
    function show() { name.textContent = names[current()]; }
    button.hidden = false;
    show();
    button.addEventListener("click", function () {
      var next = order[(order.indexOf(current()) + 1) % order.length];
      if (next === "auto") {
        document.documentElement.removeAttribute("data-theme");
      } else {
        document.documentElement.setAttribute("data-theme", next);
      }
      try { localStorage.setItem("live-track-theme", next); } catch (e) { /* not remembered */ }
      show();
    });
  }

  // --- Click-to-expand rows ---------------------------------------------
  var expanded = new Set();

  function toggleRow(row, open) {
    var button = row.querySelector(".expand");
    var next = row.nextElementSibling;
    var isOpen = next && next.classList.contains("detail-row");
    if (open === undefined) { open = !isOpen; }
    var id = row.getAttribute("data-session-id");
    if (!open) {
      if (isOpen) { next.remove(); }
      button.setAttribute("aria-expanded", "false");
      button.textContent = "▸";
      expanded.delete(id);
      return Promise.resolve();
    }
    if (isOpen) { return Promise.resolve(); }
    expanded.add(id);
    button.setAttribute("aria-expanded", "true");
    button.textContent = "▾";
    return fetch(row.getAttribute("data-detail-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var detail = document.createElement("tr");
        detail.className = "detail-row";
        var cell = document.createElement("td");
        cell.colSpan = row.children.length;
        cell.innerHTML = html; // server-rendered and escaped by the template
        detail.appendChild(cell);
        row.after(detail);
      })
      .catch(function () { expanded.delete(id); button.setAttribute("aria-expanded", "false"); });
  }

  function enableRows(panel) {
    panel.querySelectorAll(".session-row").forEach(function (row) {
      var button = row.querySelector(".expand");
      if (!button) { return; }
      button.hidden = false;
      if (expanded.has(row.getAttribute("data-session-id"))) { toggleRow(row, true); }
    });
  }

  function setupRows(panel) {
    panel.addEventListener("click", function (event) {
      var button = event.target.closest(".expand");
      if (button) { toggleRow(button.closest(".session-row")); }
    });
    enableRows(panel);
  }

  // --- Notifications -----------------------------------------------------
  function notificationsAllowed() {
    return "Notification" in window && Notification.permission === "granted";
  }

  function setupNotifications() {
    var button = $("notify-toggle");
    if (!button || !("Notification" in window)) { return; }
    var text = button.querySelector(".btn-text") || button;
    function label(words) {
      text.textContent = words;
      button.title = words; // phones show only the bell
      button.setAttribute("aria-label", words);
    }
    function show() {
      button.hidden = false;
      if (Notification.permission === "granted") {
        label("Benachrichtigungen an");
        button.disabled = true;
      } else if (Notification.permission === "denied") {
        label("Benachrichtigungen blockiert");
        button.disabled = true;
      }
    }
    show();
    button.addEventListener("click", function () {
      Notification.requestPermission().then(show);
    });
  }

  function formatPnl(value) {
    if (value === null || value === undefined) { return "–"; }
    return (value > 0 ? "+" : "") + value.toFixed(2);
  }

  function isRealMoney(session) {
    return session.real_money === true || REAL_MONEY.indexOf(session.mode) !== -1;
  }

  function statusLabel(status) {
    return STATUSES[status] ? STATUSES[status].label : status;
  }

  function notify(title, body, session, urgent) {
    showToast(title, body, session);
    if (notificationsAllowed()) {
      new Notification(title, { body: body, tag: session.session_id, requireInteraction: urgent });
    }
  }

  function announce(session) {
    var urgent = session.status === "failed" || isRealMoney(session);
    var label = statusLabel(session.status);
    var title = (urgent ? "⚠ " : "") + "Session " + label + " · " + session.mode.toUpperCase();
    var pnl = formatPnl(session.realized_pnl) + (session.currency ? " " + session.currency : "");
    var body = session.session_id + "\nStatus: " + label + " · PnL: " + pnl;
    notify(title, body, session, urgent);
  }

  // A real-money session whose heartbeats stopped: the bot may be dead with open orders.
  function announceStale(session) {
    if (!isRealMoney(session)) { return; }
    var title = "⚠ Session " + (VOCABULARY.stale || "stale") + " · " + session.mode.toUpperCase();
    var body = session.session_id + "\nKein Heartbeat mehr – Bot prüfen.";
    notify(title, body, { session_id: session.session_id, status: "stale", mode: session.mode, real_money: true }, true);
  }

  function showToast(title, body, session) {
    var box = $("toasts");
    if (!box) { return; }
    var toast = document.createElement("div");
    toast.className = "toast toast-" + session.status + (isRealMoney(session) ? " toast-live" : "");
    var strong = document.createElement("strong");
    strong.textContent = title;
    var text = document.createElement("div");
    text.textContent = body;
    toast.append(strong, text);
    box.appendChild(toast);
    setTimeout(function () { toast.remove(); }, 8000);
  }

  // --- Live refresh ------------------------------------------------------
  function setupLive(panel) {
    var indicator = $("live-indicator");
    var pauseButton = $("live-pause");
    var label = indicator.querySelector(".live-label");
    var time = indicator.querySelector(".live-time");
    var paused = false;
    var pending = false;
    var source = null;
    var connected = false;
    var reconnecting = false;

    function setState(state) {
      indicator.setAttribute("data-state", state);
      label.textContent = state === "paused" ? "pausiert" : state;
    }

    function stamp() {
      time.textContent = "· " + new Date().toLocaleTimeString("de-DE", { timeZone: "UTC" }) + " UTC";
    }

    function refresh() {
      if (paused) { pending = true; return; }
      pending = false;
      var wrap = panel.querySelector(".table-wrap");
      var scrollLeft = wrap ? wrap.scrollLeft : 0;
      fetch(panel.getAttribute("data-partial"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          panel.innerHTML = html; // server-rendered partial, escaped by the template
          var newWrap = panel.querySelector(".table-wrap");
          if (newWrap) { newWrap.scrollLeft = scrollLeft; }
          enableRows(panel);
          stamp();
        })
        .catch(function () { setState("offline"); });
    }

    function currentGeneration() {
      var section = panel.querySelector("[data-generation]");
      return section ? Number(section.getAttribute("data-generation")) : -1;
    }

    function connect() {
      source = new EventSource(EVENTS_URL);
      source.addEventListener("hello", function (event) {
        connected = true;
        if (!paused) { setState("live"); }
        stamp();
        var data = JSON.parse(event.data);
        // Generations restart with every server process, so after any
        // reconnect the page may be stale even when the numbers agree.
        if (reconnecting || data.generation !== currentGeneration()) { refresh(); }
        reconnecting = false;
      });
      source.addEventListener("update", function (event) {
        var data = JSON.parse(event.data);
        (data.ended || []).forEach(announce);
        (data.stale || []).forEach(announceStale);
        if (data.ended_more > 0) { // capped per update: one summary instead of a flood
          showToast("Weitere Sessions beendet", "+" + data.ended_more + " weitere Session(s) beendet – siehe Tabelle.", { status: "completed", mode: "" });
        }
        refresh();
      });
      source.onerror = function () {
        connected = false;
        reconnecting = true;
        setState("offline");
        if (source.readyState === EventSource.CLOSED) {
          setTimeout(connect, RECONNECT_MS); // the browser gave up; we do not
        }
      };
    }

    indicator.hidden = false;
    pauseButton.hidden = false;
    pauseButton.addEventListener("click", function () {
      paused = !paused;
      pauseButton.setAttribute("aria-pressed", String(paused));
      pauseButton.textContent = paused ? "Fortsetzen" : "Pause";
      setState(paused ? "paused" : (connected ? "live" : "offline"));
      if (!paused && pending) { refresh(); }
    });
    connect();
  }

  // --- Filter box ----------------------------------------------------------
  // Closed on phones unless a filter is active (the server opens it then);
  // wide screens have room, so open it there before the first paint.
  function openFiltersOnWideScreens() {
    var box = $("filter-box");
    if (box && window.matchMedia && window.matchMedia(WIDE_SCREEN).matches) { box.open = true; }
  }

  openFiltersOnWideScreens(); // deferred script: the document is parsed already

  document.addEventListener("DOMContentLoaded", function () {
    setupTheme();
    var panel = $("live-track-panel");
    if (!panel) { return; }
    setupRows(panel);
    setupNotifications();
    setupLive(panel);
  });
})();
