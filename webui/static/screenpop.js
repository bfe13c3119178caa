/* Screen pop: every few seconds, fetch this page again and swap in the part that shows the
   current call (no full reload: the operator's scroll position and selection stay). The
   server escapes every caller-supplied text; the fetched page is parsed, never run. */
(function () {
  "use strict";
  var live = document.getElementById("screenpop-live");
  if (!live || typeof fetch === "undefined") { return; }
  var interval = parseInt(live.getAttribute("data-interval"), 10) || 5000;
  var updates = 0;
  function refresh() {
    fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("screenpop-live");
        if (!fresh) { return; }
        var current = document.getElementById("screenpop-live");
        current.replaceChildren.apply(current, Array.prototype.map.call(fresh.childNodes, function (n) {
          return document.importNode(n, true);
        }));
        updates += 1;
        current.setAttribute("data-updates", String(updates));
      })
      .catch(function () {})
      .then(function () { setTimeout(refresh, interval); });
  }
  setTimeout(refresh, interval);
})();
