/* Settings → DNI: the copy button of the snippet (the clipboard API, else a selection) and "Check again". */
(function () {
  "use strict";
  var btn = document.getElementById("dni-copy");
  if (!btn) { return; }
  btn.addEventListener("click", function () {
    var text = document.getElementById(btn.dataset.target).textContent;
    function done() { btn.textContent = btn.dataset.done; btn.setAttribute("data-copied", "1"); }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var range = document.createRange();
      range.selectNodeContents(document.getElementById(btn.dataset.target));
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      if (document.execCommand("copy")) { done(); }
    }
  });
})();

/* Settings → DNI: "Check again" reloads the live check (an HTML fragment) without reloading the page. */
(function () {
  "use strict";
  var btn = document.getElementById("dni-recheck");
  if (!btn) { return; }
  var checks = 0, status = document.getElementById("dni-recheck-status");
  btn.addEventListener("click", function () {
    btn.disabled = true;
    fetch(btn.dataset.url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.text();
    }).then(function (html) {
      var old = document.getElementById("dni-seen");
      var box = document.createElement("div");
      box.innerHTML = html;                   // rendered and escaped by the server
      var fresh = box.querySelector("#dni-seen");
      if (old && fresh) { old.parentNode.replaceChild(fresh, old); }
      btn.setAttribute("data-checks", String(++checks));
      status.textContent = "";
    }).catch(function () {
      status.textContent = btn.dataset.failed;
    }).then(function () { btn.disabled = false; });
  });
})();
