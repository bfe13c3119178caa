/* Live dashboard: polls /dashboard/snapshot.json with If-None-Match (a 304 while nothing
   changed) and updates the counters and the calls in progress; between changes it advances
   the clock and the durations by itself. A poll holds no server thread once answered, so
   any number of tabs work. Caller names are hostile: textContent only. */
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || typeof fetch === "undefined") { return; }
  var status = document.getElementById("dash-status");
  var interval = parseInt(root.dataset.interval, 10) || 2000;
  var updates = 0, etag = null, last = null, lastAt = 0, failing = false;
  /* counts in the page's language (<html lang>): "1 234" in Russian, "1,234" in English */
  var numbers = new Intl.NumberFormat(document.documentElement.lang || undefined, {maximumFractionDigits: 1});
  function setText(id, v) {
    var el = document.getElementById(id);
    if (el) { el.textContent = (v === null || v === undefined) ? "—" : (typeof v === "number" ? numbers.format(v) : String(v)); }
  }
  function clock(now, elapsed) {
    /* "YYYY-MM-DD HH:MM:SS" in the project's zone, plus the seconds since it was read */
    var m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(now || "");
    if (!m) { return now; }
    var d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + elapsed * 1000);
    return d.toISOString().slice(0, 19).replace("T", " ");
  }
  function draw() {
    if (!last) { return; }
    var elapsed = Math.max(0, Math.floor((Date.now() - lastAt) / 1000));
    Object.keys(last.today).forEach(function (k) { setText("count-" + k, last.today[k]); });
    setText("dash-now", clock(last.now, elapsed));
    var tbody = document.querySelector("#live-calls tbody");
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    last.in_progress.forEach(function (c) {
      var tr = document.createElement("tr");
      var state = c.state === "talking" ? root.dataset.labelTalking : root.dataset.labelWaiting;
      [c.started, c.seconds + elapsed, state, (c.caller + " " + c.caller_name).trim(), c.source, c.operator]
        .forEach(function (v) {
          var td = document.createElement("td");
          td.textContent = String(v);
          tr.appendChild(td);
        });
      tbody.appendChild(tr);
    });
  }
  function live(ok) {
    failing = !ok;
    status.textContent = ok ? root.dataset.labelLive : root.dataset.labelOffline;
    status.setAttribute("data-live", ok ? "1" : "0");
  }
  function poll() {
    var headers = etag ? {"If-None-Match": etag} : {};
    fetch(root.dataset.snapshot, {credentials: "same-origin", cache: "no-store", headers: headers})
      .then(function (r) {
        if (r.status === 304) { live(true); return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        etag = r.headers.get("ETag");
        return r.json();
      })
      .then(function (snap) {
        if (snap) {
          last = snap; lastAt = Date.now(); updates += 1;
          draw();
          root.setAttribute("data-updates", String(updates));
          live(true);
        }
      })
      .catch(function () { live(false); })
      .then(function () { setTimeout(poll, failing ? Math.max(interval, 5000) : interval); });
  }
  setInterval(function () { if (last && !failing) { draw(); } }, 1000);
  poll();
})();
