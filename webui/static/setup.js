/* Settings → DNI: the copy button of the snippet (the clipboard API, else a selection). */
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
