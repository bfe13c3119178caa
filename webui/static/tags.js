/* Tag colours: every element with data-tag-color="#rrggbb" (the server checked the value) gets it
   as its --tag-color; set from here because the Content-Security-Policy forbids style attributes. */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-tag-color]"), function (el) {
    var c = el.getAttribute("data-tag-color");
    if (/^#[0-9a-fA-F]{6}$/.test(c)) { el.style.setProperty("--tag-color", c); el.classList.add("colored"); }
  });
})();
