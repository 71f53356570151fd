/* Screen pop: when the telephone system reports a call for this agent, the server sends
 * `screen_pop` to this person's sessions only; live.js turns it into a `wk:screen_pop` DOM
 * event. The panel's content is rendered by the server (/calls/<id>/panel) and shown in
 * the side panel; `call_update` (answered, ended) reloads it so the agent can log the call. */
(function () {
  "use strict";

  var panel = document.getElementById("screen-pop");
  if (!panel || !window.bootstrap) {
    return;
  }
  var shownCall = null;

  function here() {
    return window.location.pathname + window.location.search;
  }

  function load(url) {
    var sep = url.indexOf("?") >= 0 ? "&" : "?";
    return fetch(url + sep + "next=" + encodeURIComponent(here()), {
      credentials: "same-origin",
      headers: {"Accept": "text/html"}
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("panel " + response.status);
      }
      return response.text();
    }).then(function (html) {
      panel.innerHTML = html;
      window.bootstrap.Offcanvas.getOrCreateInstance(panel).show();
    });
  }

  function show(call, force) {
    if (!force && shownCall !== call.id && call.state !== "ringing" && !panel.classList.contains("show")) {
      return; // an update for a call the agent closed: nothing to reopen
    }
    shownCall = call.id;
    load("/calls/" + call.id + "/panel").catch(function () { /* the calls page still lists it */ });
  }

  document.addEventListener("wk:screen_pop", function (event) { show(event.detail, true); });
  document.addEventListener("wk:call_update", function (event) {
    if (shownCall === event.detail.id) {
      show(event.detail, false);
    }
  });
  // Choosing among several matching customers reloads the panel in place.
  panel.addEventListener("click", function (event) {
    var link = event.target.closest("[data-pop-choose]");
    if (link) {
      event.preventDefault();
      load(link.getAttribute("href"));
    }
  });
})();
