// The call card's dialogue: clicking a phrase's time plays the recording from there; the
// phrase being heard is highlighted while the recording plays.
(function () {
  "use strict";
  var audio = document.getElementById("recording");
  var dialogue = document.getElementById("dialogue");
  if (!audio || !dialogue) { return; }
  var buttons = Array.prototype.slice.call(dialogue.querySelectorAll("button.seek"));

  function seek(seconds) {
    if (audio.readyState === 0) {
      audio.addEventListener("loadedmetadata", function once() {
        audio.removeEventListener("loadedmetadata", once);
        audio.currentTime = seconds;
      });
      audio.preload = "auto";
      audio.load();
    } else {
      audio.currentTime = seconds;
    }
    var played = audio.play();
    if (played && played.catch) { played.catch(function () {}); }
  }

  dialogue.addEventListener("click", function (e) {
    var b = e.target.closest("button.seek");
    if (b) { seek(parseFloat(b.getAttribute("data-start")) || 0); }
  });

  audio.addEventListener("timeupdate", function () {
    var t = audio.currentTime, current = null;
    buttons.forEach(function (b) {
      if (parseFloat(b.getAttribute("data-start")) <= t + 0.05) { current = b; }
    });
    buttons.forEach(function (b) { b.parentNode.classList.toggle("playing", b === current); });
  });
}());
