// Results as you type on /search. Without this script the form still works: it is a
// plain GET form, and the server renders the same results.
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  var input = document.getElementById("q");
  var results = document.getElementById("results");
  if (!form || !input || !results || !window.fetch) return;
  var timer = null;
  var latest = 0;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = input.value.trim();
      var ticket = ++latest;
      if (q.length < 2) {
        results.innerHTML = "";
        return;
      }
      fetch("/search?partial=1&q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          // Only the newest answer is shown, whatever order they arrive in.
          if (ticket === latest) {
            results.innerHTML = html;
            history.replaceState(null, "", "/search?q=" + encodeURIComponent(q));
          }
        })
        .catch(function () {});
    }, 200);
  });
})();
