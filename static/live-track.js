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

  // --- Time zone: the server renders UTC; "Lokal" converts on the page -------
  var TZ_KEY = "live-track-tz";
  var DATE_PARTS = { day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit" };

  function timeZoneMode() {
    try { return localStorage.getItem(TZ_KEY) === "local" ? "local" : "utc"; } catch (e) { return "utc"; }
  }

  function zoneName(date) {
    try {
      var parts = new Intl.DateTimeFormat("de-DE", { timeZoneName: "short" }).formatToParts(date);
      var zone = parts.filter(function (p) { return p.type === "timeZoneName"; })[0];
      return zone ? zone.value : "Lokal";
    } catch (e) { return "Lokal"; }
  }

  function localText(date) {
    return date.toLocaleString("de-DE", DATE_PARTS).replace(",", "");
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  // <input type=datetime-local> values: "YYYY-MM-DDTHH:MM" in UTC or in local time.
  function inputValue(date, local) {
    if (local) {
      return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
        "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
    }
    return date.toISOString().slice(0, 16);
  }

  function parseInput(value, local) {
    if (!value) { return null; }
    var date = new Date(local ? value : value + "Z");
    return isNaN(date.getTime()) ? null : date;
  }

  // Text an element shows for an instant (data-time) in local time, by its data-time-format.
  var LOCAL_FORMATS = {
    datetime: function (date) { return localText(date) + " " + zoneName(date); },
    day: function (date) { return pad(date.getDate()) + "." + pad(date.getMonth() + 1) + "."; },
    clock: function (date) { return pad(date.getHours()) + ":" + pad(date.getMinutes()); },
    zone: function (date) { return zoneName(date); },
    "zone-long": function (date) { return "Lokalzeit (" + zoneName(date) + ")"; },
  };

  // Chart ticks and titles, the footer: the element's own first text holds its UTC
  // text (data-time-text) somewhere; in local time only that part is replaced.
  function applyTimeTexts(root, local) {
    root.querySelectorAll("[data-time-format]").forEach(function (node) {
      var text = node.firstChild;
      var format = LOCAL_FORMATS[node.getAttribute("data-time-format")];
      if (!text || text.nodeType !== Node.TEXT_NODE || !format) { return; }
      if (!node.hasAttribute("data-utc-text")) { node.setAttribute("data-utc-text", text.nodeValue); }
      var utc = node.getAttribute("data-utc-text");
      var date = node.hasAttribute("data-time") ? new Date(node.getAttribute("data-time")) : new Date();
      if (local && !isNaN(date.getTime())) {
        text.nodeValue = utc.replace(node.getAttribute("data-time-text"), format(date));
      } else {
        text.nodeValue = utc;
      }
    });
  }

  // A clock time the page itself took (last update, an event): kept in data-at,
  // so switching the zone shows it anew.
  function clockText(date) {
    return timeZoneMode() === "local"
      ? date.toLocaleTimeString("de-DE") + " " + zoneName(date)
      : date.toLocaleTimeString("de-DE", { timeZone: "UTC" }) + " UTC";
  }

  function showClock(node, date) {
    node.setAttribute("data-at", date.toISOString());
    node.textContent = (node.getAttribute("data-prefix") || "") + clockText(date);
  }

  function applyTimes(root) {
    var local = timeZoneMode() === "local";
    applyTimeTexts(root, local);
    root.querySelectorAll("[data-at]").forEach(function (node) {
      showClock(node, new Date(node.getAttribute("data-at")));
    });
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      if (!node.hasAttribute("data-utc-text")) { node.setAttribute("data-utc-text", node.textContent); }
      var date = new Date(node.getAttribute("datetime"));
      var zone = node.parentElement && node.parentElement.querySelector(".tz");
      if (local && !isNaN(date.getTime())) {
        node.textContent = localText(date);
        if (zone) { zone.textContent = zoneName(date); }
      } else {
        node.textContent = node.getAttribute("data-utc-text");
        if (zone) { zone.textContent = "UTC"; }
      }
    });
    root.querySelectorAll("input[data-utc-input]").forEach(function (input) {
      var shownLocal = input.getAttribute("data-shown") === "local";
      if (shownLocal === local) { return; }
      var date = parseInput(input.value, shownLocal);
      if (date) { input.value = inputValue(date, local); }
      input.setAttribute("data-shown", local ? "local" : "utc");
    });
    root.querySelectorAll(".tz-label").forEach(function (label) {
      label.textContent = local ? "(" + zoneName(new Date()) + ")" : "(UTC)";
    });
  }

  function setupTimeZone() {
    var button = $("tz-toggle");
    var name = button && button.querySelector(".tz-name");
    function show() {
      document.documentElement.setAttribute("data-tz", timeZoneMode());
      if (name) { name.textContent = timeZoneMode() === "local" ? "Lokal" : "UTC"; }
      applyTimes(document);
    }
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        try { localStorage.setItem(TZ_KEY, timeZoneMode() === "local" ? "utc" : "local"); } catch (e) { /* not remembered */ }
        show();
      });
    }
    show();
  }

  // --- Click-to-expand rows ---------------------------------------------
  var expanded = new Set();

  function setExpanded(row, open) {
    var button = row.querySelector(".expand");
    row.setAttribute("aria-expanded", String(open));
    if (button) {
      button.setAttribute("aria-expanded", String(open));
      button.textContent = open ? "▾" : "▸";
    }
  }

  function toggleRow(row, open) {
    var next = row.nextElementSibling;
    var hasDetail = next && next.classList.contains("detail-row");
    var isOpen = row.getAttribute("aria-expanded") === "true";
    if (open === undefined) { open = !isOpen; }
    var id = row.getAttribute("data-session-id");
    if (!open) {
      if (hasDetail) { next.remove(); }
      setExpanded(row, false);
      expanded.delete(id);
      return Promise.resolve();
    }
    if (isOpen && hasDetail) { return Promise.resolve(); }
    expanded.add(id);
    setExpanded(row, true);
    return fetch(row.getAttribute("data-detail-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        if (row.getAttribute("aria-expanded") !== "true") { return; } // closed meanwhile
        var following = row.nextElementSibling;
        if (following && following.classList.contains("detail-row")) { following.remove(); }
        var detail = document.createElement("tr");
        detail.className = "detail-row";
        var cell = document.createElement("td");
        cell.colSpan = row.children.length;
        cell.innerHTML = html; // server-rendered and escaped by the template
        detail.appendChild(cell);
        row.after(detail);
        applyTimes(detail);
      })
      .catch(function () { expanded.delete(id); setExpanded(row, false); });
  }

  function enableRow(row) {
    var button = row.querySelector(".expand");
    if (!button) { return; }
    button.hidden = false;
    button.tabIndex = -1; // the row itself takes the focus
    row.tabIndex = 0;
    row.setAttribute("aria-expanded", "false");
    if (expanded.has(row.getAttribute("data-session-id"))) { toggleRow(row, true); }
  }

  function enableRows(root) {
    root.querySelectorAll(".session-row").forEach(enableRow);
  }

  function setupRows(panel) {
    panel.addEventListener("click", function (event) {
      var row = event.target.closest(".session-row");
      if (!row) { return; }
      // Links keep working; a text selection is not a click.
      if (event.target.closest("a") || String(window.getSelection() || "")) { return; }
      toggleRow(row);
    });
    panel.addEventListener("keydown", function (event) {
      var row = event.target;
      if (!row.classList || !row.classList.contains("session-row")) { return; }
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggleRow(row);
      }
    });
    enableRows(panel);
  }

  // --- Notifications and the event log ----------------------------------
  var NOTIFY_KEY = "live-track-notify";
  var EVENTS_KEPT = 50;

  function notificationsWanted() {
    try { return localStorage.getItem(NOTIFY_KEY) !== "off"; } catch (e) { return true; }
  }

  function notificationsAllowed() {
    return "Notification" in window && Notification.permission === "granted" && notificationsWanted();
  }

  function setupNotifications() {
    var button = $("notify-toggle");
    if (!button || !("Notification" in window)) { return; }
    var text = button.querySelector(".btn-text") || button;
    function label(words, pressed) {
      text.textContent = words;
      button.title = words; // phones show only the bell
      button.setAttribute("aria-label", words);
      button.setAttribute("aria-pressed", String(pressed));
    }
    function show() {
      button.hidden = false;
      button.disabled = false;
      if (Notification.permission === "granted") {
        if (notificationsWanted()) {
          label("Benachrichtigungen an", true);
        } else {
          label("Benachrichtigungen aus", false);
        }
      } else if (Notification.permission === "denied") {
        label("Benachrichtigungen blockiert", false);
        button.disabled = true;
      } else {
        label("Benachrichtigungen aktivieren", false);
      }
    }
    show();
    button.addEventListener("click", function () {
      if (Notification.permission === "granted") {
        try { localStorage.setItem(NOTIFY_KEY, notificationsWanted() ? "off" : "on"); } catch (e) { /* session only */ }
        show();
        return;
      }
      Notification.requestPermission().then(function () {
        try { localStorage.setItem(NOTIFY_KEY, "on"); } catch (e) { /* session only */ }
        show();
      });
    });
  }

  // As the server formats amounts (src/webui/formatting.py): +1.466.206,09, a real minus.
  var AMOUNT = new Intl.NumberFormat("de-DE", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  function formatPnl(value) {
    if (value === null || value === undefined) { return "–"; }
    var text = AMOUNT.format(Math.abs(value));
    if (text === "0,00") { return text; }
    return (value > 0 ? "+" : "−") + text;
  }

  function isRealMoney(session) {
    return session.real_money === true || REAL_MONEY.indexOf(session.mode) !== -1;
  }

  function statusLabel(status) {
    return STATUSES[status] ? STATUSES[status].label : status;
  }

  function notify(title, body, session, urgent) {
    showToast(title, body, session);
    logEvent(title, body, session);
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
    while (box.children.length > 4) { box.firstElementChild.remove(); } // the log keeps the rest
    setTimeout(function () { toast.remove(); }, 8000);
  }

  function logEvent(title, body, session) {
    var log = $("event-log");
    if (!log) { return; }
    var list = log.querySelector(".event-list");
    var item = document.createElement("li");
    item.className = "event event-" + session.status + (isRealMoney(session) ? " event-live" : "");
    var when = document.createElement("span");
    when.className = "event-time";
    showClock(when, new Date());
    var link = document.createElement("a");
    link.href = "/session/" + encodeURIComponent(session.session_id);
    link.textContent = title;
    var text = document.createElement("div");
    text.className = "event-body";
    text.textContent = body;
    item.append(when, link, text);
    list.prepend(item);
    while (list.children.length > EVENTS_KEPT) { list.lastElementChild.remove(); }
    log.hidden = false;
    var count = log.querySelector(".event-count");
    count.textContent = String(list.children.length);
    count.setAttribute("data-count", String(list.children.length));
  }

  // --- Updating in place ---------------------------------------------------
  // Each element the server rendered keeps the HTML it came with, so a
  // heartbeat replaces only what changed; an open row, a focus or a text
  // selection elsewhere survives.
  function remember(element) { element.__served = element.outerHTML; }

  function rememberPanel(root) {
    var section = root.querySelector(".panel") || root;
    Array.prototype.forEach.call(section.children, remember);
    root.querySelectorAll(".sessions > *, .table-wrap > *, .sessions-table > *, .sessions-table > tbody > tr")
      .forEach(remember);
  }

  function sameShape(a, b) {
    if (a.children.length !== b.children.length) { return false; }
    for (var i = 0; i < a.children.length; i += 1) {
      if (a.children[i].tagName !== b.children[i].tagName) { return false; }
    }
    return true;
  }

  function placeInOrder(parent, nodes) {
    nodes.forEach(function (node, i) {
      if (parent.children[i] !== node) { parent.insertBefore(node, parent.children[i] || null); }
    });
    while (parent.children.length > nodes.length) { parent.lastElementChild.remove(); }
  }

  function syncRows(oldBody, newBody, stats) {
    var old = {};
    oldBody.querySelectorAll(":scope > .session-row").forEach(function (row) {
      old[row.getAttribute("data-session-id")] = row;
    });
    var order = [];
    Array.prototype.slice.call(newBody.children).forEach(function (row) {
      var id = row.getAttribute("data-session-id");
      var before = id !== null ? old[id] : null;
      if (before && before.__served === row.outerHTML) {
        order.push(before);
        var detail = before.nextElementSibling;
        if (detail && detail.classList.contains("detail-row")) { order.push(detail); }
        return;
      }
      remember(row);
      stats.replaced += 1;
      order.push(row);
      stats.fresh.push(row);
    });
    placeInOrder(oldBody, order);
  }

  function syncChildren(oldParent, newParent, stats) {
    if (!sameShape(oldParent, newParent)) {
      Array.prototype.forEach.call(newParent.children, remember);
      stats.replaced += newParent.children.length;
      oldParent.replaceChildren.apply(oldParent, Array.prototype.slice.call(newParent.children));
      stats.fresh.push(oldParent);
      return;
    }
    var pairs = [];
    for (var i = 0; i < newParent.children.length; i += 1) {
      pairs.push([oldParent.children[i], newParent.children[i]]);
    }
    pairs.forEach(function (pair) {
      var before = pair[0];
      var after = pair[1];
      if (after.tagName === "TBODY" && after.parentElement.classList.contains("sessions-table")) {
        syncRows(before, after, stats);
      } else if (after.matches(".sessions, .table-wrap, .sessions-table")) {
        syncChildren(before, after, stats);
      } else if (before.__served !== after.outerHTML) {
        remember(after);
        before.replaceWith(after);
        stats.replaced += 1;
        stats.fresh.push(after);
      }
    });
  }

  function syncPanel(panel, html) {
    var template = document.createElement("template");
    template.innerHTML = html; // server-rendered partial, escaped by the template
    var fresh = template.content.querySelector(".panel");
    var current = panel.querySelector(".panel");
    var stats = { replaced: 0, fresh: [] };
    if (!fresh || !current) {
      panel.replaceChildren.apply(panel, Array.prototype.slice.call(template.content.childNodes));
      rememberPanel(panel);
      stats.fresh.push(panel);
    } else {
      Array.prototype.slice.call(fresh.attributes).forEach(function (attribute) {
        current.setAttribute(attribute.name, attribute.value);
      });
      syncChildren(current, fresh, stats);
    }
    stats.fresh.forEach(function (node) {
      applyTimes(node);
      if (node.classList && node.classList.contains("session-row")) { enableRow(node); } else { enableRows(node); }
    });
    panel.setAttribute("data-replaced", String(stats.replaced));
    return stats;
  }

  function showCounts(panel) {
    var section = panel.querySelector(".panel");
    if (!section) { return; }
    var running = Number(section.getAttribute("data-running") || 0);
    var failed = Number(section.getAttribute("data-failed") || 0);
    var base = "Live-Track · Peak_Trade";
    document.title = running || failed ? "(" + running + " ▶ " + failed + " ✖) " + base : base;
  }

  // --- Live refresh ------------------------------------------------------
  function connectEvents(handlers) {
    var indicator = $("live-indicator");
    var banner = $("offline-banner");
    var label = indicator.querySelector(".live-label");
    var time = indicator.querySelector(".live-time");
    var state = { connected: false, reconnecting: false, paused: false };

    function setState(name) {
      indicator.setAttribute("data-state", name);
      label.textContent = name === "paused" ? "pausiert" : name;
      var offline = name === "offline";
      if (banner) { banner.hidden = !offline; }
      document.body.classList.toggle("is-offline", offline);
    }

    function stamp() {
      time.setAttribute("data-prefix", "· ");
      showClock(time, new Date());
    }

    function connect() {
      var source = new EventSource(EVENTS_URL);
      source.addEventListener("hello", function (event) {
        state.connected = true;
        setState(state.paused ? "paused" : "live");
        stamp();
        handlers.hello(JSON.parse(event.data), state.reconnecting);
        state.reconnecting = false;
      });
      source.addEventListener("update", function (event) {
        handlers.update(JSON.parse(event.data));
      });
      source.onerror = function () {
        state.connected = false;
        state.reconnecting = true;
        setState("offline");
        if (source.readyState === EventSource.CLOSED) {
          setTimeout(connect, RECONNECT_MS); // the browser gave up; we do not
        }
      };
    }

    indicator.hidden = false;
    connect();
    return { state: state, setState: setState, stamp: stamp };
  }

  function setupLive(panel) {
    var pauseButton = $("live-pause");
    var pending = 0;
    var live = null;

    function showPending() {
      pauseButton.setAttribute("data-pending", String(pending));
      pauseButton.textContent = live.state.paused
        ? "Fortsetzen" + (pending ? " (" + pending + " " + (pending === 1 ? "Änderung" : "Änderungen") + ")" : "")
        : "Pause";
    }

    function refresh() {
      if (live.state.paused) { pending += 1; showPending(); return; }
      pending = 0;
      showPending();
      fetch(panel.getAttribute("data-partial"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          syncPanel(panel, html);
          showCounts(panel);
          live.stamp();
          panel.setAttribute("data-refreshes", String(Number(panel.getAttribute("data-refreshes") || 0) + 1));
        })
        .catch(function () { live.setState("offline"); });
    }

    function currentGeneration() {
      var section = panel.querySelector("[data-generation]");
      return section ? Number(section.getAttribute("data-generation")) : -1;
    }

    live = connectEvents({
      hello: function (data, reconnected) {
        // Generations restart with every server process, so after any
        // reconnect the page may be stale even when the numbers agree.
        if (reconnected || data.generation !== currentGeneration()) { refresh(); }
      },
      update: function (data) {
        (data.ended || []).forEach(announce);
        (data.stale || []).forEach(announceStale);
        if (data.ended_more > 0) { // capped per update: one summary instead of a flood
          showToast("Weitere Sessions beendet", "+" + data.ended_more + " weitere Session(s) beendet – siehe Tabelle.", { status: "completed", mode: "" });
        }
        refresh();
      },
    });
    pauseButton.hidden = false;
    pauseButton.addEventListener("click", function () {
      live.state.paused = !live.state.paused;
      pauseButton.setAttribute("aria-pressed", String(live.state.paused));
      live.setState(live.state.paused ? "paused" : (live.state.connected ? "live" : "offline"));
      var waiting = pending;
      showPending();
      if (!live.state.paused && waiting) { refresh(); }
    });
    showPending();
    showCounts(panel);
  }

  // The detail page of a session follows it live, too.
  function setupDetail(box) {
    var live = connectEvents({
      hello: function (data, reconnected) { if (reconnected) { reload(); } },
      update: function () { reload(); },
    });
    function reload() {
      fetch(box.getAttribute("data-partial"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          if (box.__served !== html) {
            box.__served = html;
            box.innerHTML = html; // server-rendered and escaped by the template
            applyTimes(box);
          }
          live.stamp();
          box.setAttribute("data-refreshes", String(Number(box.getAttribute("data-refreshes") || 0) + 1));
        })
        .catch(function () { live.setState("offline"); });
    }
  }

  // --- Filter form: no empty parameters, times back in UTC -----------------
  function setupFilterForm() {
    var form = $("filter-form");
    if (!form) { return; }
    form.addEventListener("submit", function () {
      form.querySelectorAll("input[data-utc-input]").forEach(function (input) {
        if (input.getAttribute("data-shown") === "local") {
          var date = parseInput(input.value, true);
          if (date) { input.value = inputValue(date, false); }
          input.setAttribute("data-shown", "utc");
        }
      });
      form.querySelectorAll("input[name], select[name]").forEach(function (field) {
        if ((field.type !== "checkbox" || field.checked) && field.value.trim() === "") { field.disabled = true; }
      });
    });
    // Back from the next page (bfcache): the form must be usable again.
    window.addEventListener("pageshow", function () {
      form.querySelectorAll("[disabled]").forEach(function (field) { field.disabled = false; });
    });
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
    if (panel) { rememberPanel(panel); } // before the page script changes anything in it
    setupTimeZone();
    setupFilterForm();
    var detail = $("session-detail");
    if (detail && $("live-indicator")) { detail.__served = detail.innerHTML; setupDetail(detail); }
    if (!panel) { return; }
    setupRows(panel);
    setupNotifications();
    setupLive(panel);
  });
})();
