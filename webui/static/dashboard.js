/* Live dashboard: listens to the Server-Sent Events stream and updates the
   counters and the calls in progress. Caller names are hostile: textContent only. */
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || typeof EventSource === "undefined") { return; }
  var status = document.getElementById("dash-status");
  var updates = 0;
  function setText(id, v) {
    var el = document.getElementById(id);
    if (el) { el.textContent = (v === null || v === undefined) ? "—" : String(v); }
  }
  function render(snap) {
    Object.keys(snap.today).forEach(function (k) { setText("count-" + k, snap.today[k]); });
    setText("dash-now", snap.now);
    var tbody = document.querySelector("#live-calls tbody");
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    snap.in_progress.forEach(function (c) {
      var tr = document.createElement("tr");
      var state = c.state === "talking" ? root.dataset.labelTalking : root.dataset.labelWaiting;
      [c.started, c.seconds, state, (c.caller + " " + c.caller_name).trim(), c.source, c.operator]
        .forEach(function (v) {
          var td = document.createElement("td");
          td.textContent = String(v);
          tr.appendChild(td);
        });
      tbody.appendChild(tr);
    });
    updates += 1;
    root.setAttribute("data-updates", String(updates));
  }
  var polling = null;
  function poll() {
    fetch(root.dataset.snapshot, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (snap) { if (snap) { render(snap); } })
      .catch(function () {});
  }
  var es = new EventSource(root.dataset.stream);
  es.addEventListener("snapshot", function (ev) { render(JSON.parse(ev.data)); });
  es.onopen = function () { status.textContent = root.dataset.labelLive; status.setAttribute("data-live", "1"); };
  es.onerror = function () {
    status.textContent = root.dataset.labelOffline;
    status.setAttribute("data-live", "0");
    if (es.readyState === EventSource.CLOSED && polling === null) {
      /* the server turned the stream away (busy): poll every 3 s instead */
      polling = setInterval(poll, 3000);
      poll();
    }
  };
})();
