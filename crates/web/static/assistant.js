// The assistant's answers as they are written. Without this script the question
// form is posted, the answer stored, and the page shown again with it. With it, the
// same form is posted to its `data-stream` address, which answers with server-sent
// events: `token` events ({"text"}) are appended to a live region as they arrive,
// and the `done` event ({"id", "html"}) carries the stored message, rendered and
// sanitised by the server, which takes the live region's place in the list.
// Anything unexpected (a refusal, a dropped connection before any text) falls back
// to posting the form the ordinary way, so the page shows what went wrong.
(function () {
  "use strict";
  var form = document.getElementById("ask-form");
  if (!form || !window.fetch || !window.TextDecoder || !window.DOMParser) return;
  var url = form.getAttribute("data-stream");
  var list = document.getElementById("messages");
  var live = document.getElementById("answer-live");
  var status = document.getElementById("ask-status");
  var button = document.getElementById("ask-button");
  var textarea = document.getElementById("content");
  if (!url || !list || !live || !status || !button || !textarea) return;
  var busy = false;

  function say(text) {
    status.textContent = text;
  }

  function finish() {
    busy = false;
    button.disabled = false;
    live.setAttribute("aria-busy", "false");
  }

  function fallback() {
    finish();
    live.hidden = true;
    live.textContent = "";
    // HTMLFormElement.submit() does not fire "submit", so this posts normally.
    form.submit();
  }

  function addQuestion(text) {
    var empty = document.getElementById("no-messages");
    if (empty) empty.hidden = true;
    var li = document.createElement("li");
    li.className = "message message-user";
    var h = document.createElement("h3");
    h.className = "message-by";
    h.textContent = "You";
    var p = document.createElement("p");
    p.textContent = text;
    li.appendChild(h);
    li.appendChild(p);
    list.appendChild(li);
  }

  function done(data) {
    var doc = new DOMParser().parseFromString(
      "<ol>" + (data.html || "") + "</ol>", "text/html");
    var item = doc.querySelector("li");
    live.hidden = true;
    live.textContent = "";
    if (item) {
      list.appendChild(document.importNode(item, true));
      item = document.getElementById("message-" + data.id);
      if (item) {
        item.setAttribute("tabindex", "-1");
      }
    }
    textarea.value = "";
    finish();
    say("Answer received.");
  }

  form.addEventListener("submit", function (e) {
    if (busy) {
      e.preventDefault();
      return;
    }
    var question = textarea.value;
    if (!question.trim()) return; // let the browser or the server say so
    e.preventDefault();
    busy = true;
    button.disabled = true;
    say("Asking…");
    var body = new URLSearchParams(new FormData(form));
    var gotText = false;
    var finished = false;
    fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "text/event-stream" }
    }).then(function (res) {
      var type = res.headers.get("content-type") || "";
      if (!res.ok || type.indexOf("text/event-stream") !== 0 || !res.body) {
        fallback();
        return;
      }
      addQuestion(question);
      live.textContent = "";
      live.hidden = false;
      live.setAttribute("aria-busy", "true");
      var answer = document.createElement("p");
      live.appendChild(answer);
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";

      function dispatch(block) {
        var event = "message";
        var data = [];
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) event = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (!data.length) return;
        var payload;
        try {
          payload = JSON.parse(data.join("\n"));
        } catch (err) {
          return;
        }
        if (event === "token") {
          gotText = true;
          answer.textContent += payload.text || "";
        } else if (event === "done") {
          finished = true;
          done(payload);
        }
      }

      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            if (!finished) {
              // The stream ended without its stored message: show the page, which
              // has whatever was stored.
              window.location.reload();
            }
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
          var at;
          while ((at = buffer.indexOf("\n\n")) !== -1) {
            dispatch(buffer.slice(0, at));
            buffer = buffer.slice(at + 2);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      if (gotText || finished) {
        window.location.reload();
      } else {
        fallback();
      }
    });
  });
})();
