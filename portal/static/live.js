/* Live updates: follows the Socket.IO `activity` events the server sends to this user's
 * organisation, replays what was missed after a disconnect (GET /api/v1/feed?after=<id>)
 * before showing new events, and refreshes the parts of the page marked data-live-region.
 * No gaps, no duplicates: events are applied strictly in id order, each once. */
(function () {
  "use strict";

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : null;
  }

  if (typeof window.io !== "function" || !meta("live-user")) {
    return;
  }
  var userId = Number(meta("live-user"));
  var orgId = Number(meta("live-organization"));
  var lastId = Number(meta("feed-last-id") || 0);
  var replaying = false;
  var buffered = [];
  var unread = 0;
  var refreshTimer = null;

  var list = document.getElementById("feed-list");
  var empty = document.getElementById("feed-empty");
  var badge = document.getElementById("feed-unread");
  var filter = document.getElementById("feed-filter");
  var statusDot = document.getElementById("live-status");
  var toggle = document.getElementById("feed-toggle");

  function setStatus(online) {
    if (statusDot) {
      statusDot.classList.toggle("online", online);
    }
    document.body.dataset.live = online ? "online" : "offline";
  }

  function category(activity) {
    var data = activity.data || {};
    if (activity.actor_user_id === userId || data.user_id === userId) {
      return "mine";
    }
    return activity.organization_id === orgId ? "organization" : "shared";
  }

  function applyFilter() {
    if (!list || !filter) {
      return;
    }
    var wanted = filter.value;
    Array.prototype.forEach.call(list.children, function (item) {
      var cats = item.dataset.categories.split(" ");
      item.hidden = !(wanted === "all" || cats.indexOf(wanted) >= 0);
    });
  }

  function showInPanel(activity, quiet) {
    if (!list) {
      return;
    }
    var cat = category(activity);
    var cats = [cat];
    if (cat === "mine" && activity.organization_id === orgId) {
      cats.push("organization");
    }
    var item = document.createElement("li");
    item.className = "feed-item";
    item.dataset.activityId = String(activity.id);
    item.dataset.categories = cats.join(" ");
    var link = document.createElement("a");
    link.href = "/cases/" + activity.case_id;
    link.textContent = activity.summary;
    var when = document.createElement("time");
    when.dateTime = activity.at;
    when.className = "d-block small text-body-secondary";
    when.textContent = new Date(activity.at).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    item.appendChild(link);
    item.appendChild(when);
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 50) {
      list.removeChild(list.lastChild);
    }
    if (empty) {
      empty.hidden = true;
    }
    if (!quiet && activity.actor_user_id !== userId) {
      unread += 1;
      if (badge) {
        badge.textContent = String(unread);
        badge.classList.remove("d-none");
      }
    }
    applyFilter();
  }

  function relevant(activity) {
    var regions = document.querySelectorAll("[data-live-region]");
    for (var i = 0; i < regions.length; i++) {
      var region = regions[i];
      if (region.hasAttribute("data-live-any")) {
        return true;
      }
      var caseId = region.getAttribute("data-live-case");
      if (caseId && Number(caseId) === activity.case_id) {
        return true;
      }
      var cases = region.getAttribute("data-live-cases");
      if (cases && cases.split(" ").indexOf(String(activity.case_id)) >= 0) {
        return true;
      }
    }
    return false;
  }

  function refreshRegions(changedByOther) {
    fetch(window.location.href, {credentials: "same-origin", headers: {"X-Live-Refresh": "1"}})
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region]").forEach(function (region) {
          if (!region.id) {
            return;
          }
          var replacement = fresh.getElementById(region.id);
          if (replacement) {
            region.replaceWith(document.importNode(replacement, true));
          }
        });
        var notice = document.querySelector("[data-live-notice]");
        if (notice && changedByOther) {
          notice.classList.remove("d-none");
        }
        document.dispatchEvent(new CustomEvent("wk:refreshed"));
      })
      .catch(function () { /* the next activity or reconnect tries again */ });
  }

  function apply(activity) {
    if (activity.id <= lastId) {
      return; // already shown (replay and live may overlap)
    }
    lastId = activity.id;
    showInPanel(activity);
    document.dispatchEvent(new CustomEvent("wk:activity", {detail: activity}));
    if (relevant(activity)) {
      var byOther = activity.actor_user_id !== userId;
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(function () { refreshRegions(byOther); }, 150);
    }
  }

  function replay() {
    replaying = true;
    function page() {
      return fetch("/api/v1/feed?after=" + lastId + "&limit=200", {credentials: "same-origin"})
        .then(function (response) {
          if (!response.ok) {
            throw new Error("feed " + response.status);
          }
          return response.json();
        })
        .then(function (body) {
          body.items.forEach(apply);
          if (body.items.length === 200) {
            return page();
          }
          return null;
        });
    }
    return page().then(function () {
      buffered.sort(function (a, b) { return a.id - b.id; }).forEach(apply);
    }).finally(function () {
      buffered = [];
      replaying = false;
    });
  }

  var presence = document.getElementById("presence");
  var viewingCase = presence ? Number(presence.getAttribute("data-case-id")) : null;

  function showPresence(message) {
    if (!presence || message.case_id !== viewingCase) {
      return;
    }
    var others = message.viewers.filter(function (v) { return v.user_id !== userId; });
    var warning = document.getElementById("editing-warning");
    if (warning) {
      var editors = others.filter(function (v) { return v.editing; });
      warning.textContent = editors.length
        ? warning.getAttribute("data-label") + " " + editors.map(function (v) { return v.name; }).join(", ")
        : "";
      warning.classList.toggle("d-none", !editors.length);
    }
    presence.textContent = "";
    if (!others.length) {
      presence.classList.add("d-none");
      return;
    }
    var label = document.createElement("span");
    label.textContent = presence.getAttribute("data-label") + " ";
    presence.appendChild(label);
    others.forEach(function (v, index) {
      var who = document.createElement("span");
      who.className = "presence-viewer";
      who.textContent = v.name + " (" + v.organization_name + ")" + (index < others.length - 1 ? ", " : "");
      presence.appendChild(who);
    });
    presence.classList.remove("d-none");
  }

  // The panel starts with the newest activity the user may see (shown, not counted as new).
  fetch("/api/v1/feed/recent?limit=15", {credentials: "same-origin"})
    .then(function (response) { return response.ok ? response.json() : {items: []}; })
    .then(function (body) {
      body.items.slice().reverse().forEach(function (activity) {
        if (activity.id <= lastId && !document.querySelector('[data-activity-id="' + activity.id + '"]')) {
          showInPanel(activity, true);
        }
      });
    })
    .catch(function () { /* the panel simply starts empty */ });

  var socket = window.io({transports: ["websocket", "polling"]});
  function editing() {
    var form = document.getElementById("edit-case");
    return Boolean(form && form.classList.contains("show"));
  }
  function announceViewing() {
    if (viewingCase) {
      socket.emit("view_case", {case_id: viewingCase, editing: editing()});
    }
  }
  var editForm = document.getElementById("edit-case");
  if (editForm) {
    editForm.addEventListener("shown.bs.collapse", announceViewing);
    editForm.addEventListener("hidden.bs.collapse", announceViewing);
  }
  socket.on("connect", function () {
    setStatus(true);
    announceViewing();
    replay();
  });
  socket.on("presence", showPresence);
  // Telephony: screenpop.js shows the caller; it listens for these DOM events.
  ["screen_pop", "call_update"].forEach(function (name) {
    socket.on(name, function (message) {
      document.dispatchEvent(new CustomEvent("wk:" + name, {detail: message}));
    });
  });
  socket.on("notification", function (note) {
    var count = document.getElementById("mention-unread");
    if (count) {
      count.textContent = String(note.unread);
      count.classList.toggle("d-none", !note.unread);
    }
    var mentions = document.getElementById("mention-list");
    if (mentions) {
      var item = document.createElement("li");
      item.className = "feed-item fw-semibold";
      var link = document.createElement("a");
      link.href = "/cases/" + note.case_id;
      link.textContent = note.summary;
      item.appendChild(link);
      mentions.insertBefore(item, mentions.firstChild);
      var none = document.getElementById("mention-empty");
      if (none) {
        none.hidden = true;
      }
    }
  });
  function renewClaim() {
    // While the holder has the case open, the claim does not lapse (POST .../claim/renew
    // answers 409 once someone else holds it, and then nothing is renewed).
    if (!presence || presence.getAttribute("data-claimed-by-me") !== "1") {
      return;
    }
    var token = document.querySelector('meta[name="csrf-token"]');
    fetch("/api/v1/cases/" + viewingCase + "/claim/renew", {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRFToken": token ? token.getAttribute("content") : ""}
    }).then(function (response) {
      if (!response.ok) {
        presence.setAttribute("data-claimed-by-me", "0");
      }
    }).catch(function () { /* tried again at the next interval */ });
  }
  if (viewingCase) {
    setInterval(announceViewing, 30000);
    setInterval(renewClaim, 5 * 60 * 1000);
    window.addEventListener("pagehide", function () {
      socket.emit("leave_case", {case_id: viewingCase});
    });
  }
  socket.on("disconnect", function () {
    setStatus(false);
  });
  socket.on("activity", function (activity) {
    if (replaying) {
      buffered.push(activity);
    } else {
      apply(activity);
    }
  });

  if (filter) {
    filter.addEventListener("change", applyFilter);
  }
  if (toggle) {
    toggle.addEventListener("click", function () {
      unread = 0;
      if (badge) {
        badge.classList.add("d-none");
      }
    });
  }
  window.wertketteLive = {
    lastId: function () { return lastId; },
    socket: socket
  };
})();
