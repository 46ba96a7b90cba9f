// Apply the remembered theme before first paint (loaded in <head>, not deferred).
(function () {
  "use strict";
  try {
    var theme = localStorage.getItem("live-track-theme");
    if (theme === "dark" || theme === "light") {
      document.documentElement.setAttribute("data-theme", theme);
    }
  } catch (e) { /* storage blocked: follow the system setting */ }
})();
