// Evidence uploads: a drop zone and a real progress bar. Without this script the
// forms still work: each is a plain multipart form, and the server answers it with a
// redirect, or with the form again and its error. With it, the same form is posted to
// the same address by XMLHttpRequest (for `upload.onprogress`); the server answers
// `201 Created` with `Location`, and the script goes there. A refused form comes back
// as the page with its error, which replaces this one's content.
(function () {
  "use strict";
  if (!window.XMLHttpRequest || !window.FormData || !window.DOMParser) return;

  function size(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1).replace(/\.0$/, "") + " KB";
    return (bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  function enhance(form) {
    if (form.dataset.enhanced) return;
    form.dataset.enhanced = "1";
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-drop-zone]");
    var hint = form.querySelector("[data-drop-hint]");
    var progress = form.querySelector("[data-progress]");
    var bar = progress && progress.querySelector("progress");
    var barText = form.querySelector("[data-progress-text]");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector("button[type=submit]");
    var max = parseInt(form.dataset.maxBytes || "0", 10);
    if (!input || !zone || !status) return;

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("field-error", !!isError);
    }

    function chosen() {
      var f = input.files && input.files[0];
      if (!f) {
        say("");
        return true;
      }
      if (max && f.size > max) {
        say("“" + f.name + "” is " + size(f.size) + ", over the limit of " +
          form.dataset.maxSize + "; choose a smaller file.", true);
        return false;
      }
      say("Chosen: " + f.name + " (" + size(f.size) + ").");
      return true;
    }

    if (hint) hint.hidden = false;
    zone.classList.add("enhanced");
    input.addEventListener("change", chosen);
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) {
        e.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      zone.addEventListener(type, function () {
        zone.classList.remove("dragging");
      });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      zone.classList.remove("dragging");
      var files = e.dataTransfer && e.dataTransfer.files;
      if (!files || !files.length) return;
      if (files.length > 1) {
        say("Drop one file at a time.", true);
        return;
      }
      input.files = files;
      chosen();
    });

    form.addEventListener("submit", function (e) {
      if (!chosen()) {
        e.preventDefault();
        input.focus();
        return;
      }
      e.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      if (progress) progress.hidden = false;
      if (bar) bar.value = 0;
      if (button) button.disabled = true;
      say("Uploading…");
      xhr.upload.onprogress = function (p) {
        if (!p.lengthComputable || !bar) return;
        var pct = Math.floor((p.loaded / p.total) * 100);
        bar.value = pct;
        if (barText) barText.textContent = pct + "%";
      };
      xhr.upload.onload = function () {
        if (bar) bar.value = 100;
        if (barText) barText.textContent = "100%";
        say("Checking the file…");
      };
      xhr.onload = function () {
        var location = xhr.getResponseHeader("Location");
        if (xhr.status === 201 && location) {
          window.location.assign(location);
          return;
        }
        var type = xhr.getResponseHeader("Content-Type") || "";
        if (type.indexOf("text/html") === 0 && show(xhr.responseText)) return;
        failed(xhr.status === 413
          ? "The file is over the limit of " + form.dataset.maxSize + "; choose a smaller file."
          : "The upload failed (" + xhr.status + "); please try again.");
      };
      xhr.onerror = function () {
        failed("The upload was interrupted; check your connection and try again.");
      };
      xhr.send(new FormData(form));
    });

    function failed(text) {
      if (progress) progress.hidden = true;
      if (button) button.disabled = false;
      say(text, true);
    }
  }

  // A refused form: show the page the server sent in place of this one.
  function show(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = doc.querySelector("main");
    var here = document.querySelector("main");
    if (!main || !here) return false;
    here.innerHTML = main.innerHTML;
    if (doc.title) document.title = doc.title;
    init();
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
    return true;
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-upload]"), enhance);
  }

  init();
})();
