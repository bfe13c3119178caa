/* Every page: tables scroll inside a box of their own (never the page), the navigation
   folds behind a menu button on narrow screens, and charts format numbers in the page's
   language (<html lang>), not the browser's. Loaded after the page's own scripts. */
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  Array.prototype.forEach.call(document.querySelectorAll("main table"), function (t) {
    if (t.parentElement && t.parentElement.classList.contains("table-scroll")) { return; }
    var box = document.createElement("div");
    box.className = "table-scroll";
    t.parentNode.insertBefore(box, t);
    box.appendChild(t);
  });
  var toggle = document.getElementById("nav-toggle");
  var bar = document.querySelector(".topbar");
  if (toggle && bar) {
    toggle.addEventListener("click", function () {
      var open = bar.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  if (window.Chart) {
    Chart.defaults.locale = lang;
    Array.prototype.forEach.call(document.querySelectorAll("canvas"), function (c) {
      var chart = Chart.getChart(c);
      if (chart) { chart.options.locale = lang; chart.update("none"); }
    });
  }
})();
