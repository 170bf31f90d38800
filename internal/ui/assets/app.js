// firebreak UI: live refresh over server-sent events, and the drain /
// undrain / expire dialog. No dependencies; served from the binary.
(function () {
  "use strict";
  var page = document.body.dataset.page;
  var live = document.getElementById("live");
  var timer = null, busy = false, again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var url = page === "dashboard" ? "/dashboard/live" : "/status/live";
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401 && page === "dashboard") { window.location.assign("/login?next=/"); }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) { live.innerHTML = html; })
      .catch(function () { setConn("reconnecting", "offline: showing the last state"); })
      .finally(function () { busy = false; if (again) { again = false; schedule(); } });
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(refresh, 80); }

  var conn = document.getElementById("conn");
  function setConn(state, text) {
    if (!conn) { return; }
    conn.dataset.state = state;
    document.getElementById("conn-text").textContent = text;
  }

  if (page === "dashboard") {
    var kinds = ["hello", "routing", "verdict", "observation", "override", "history", "node", "leader", "topology", "store"];
    var backoff = 500;
    var connect = function () {
      var es = new EventSource("/api/v1/events");
      kinds.forEach(function (k) { es.addEventListener(k, schedule); });
      es.onopen = function () { backoff = 500; setConn("live", "live"); };
      es.onerror = function () {
        setConn("reconnecting", "reconnecting");
        if (es.readyState === EventSource.CLOSED) {
          setTimeout(connect, backoff);
          backoff = Math.min(backoff * 2, 10000);
        }
      };
    };
    connect();
    setInterval(refresh, 5000); // relative times, and a fallback if events stall
  } else if (page === "status") {
    setInterval(refresh, 15000);
  }

  // Flash messages.
  var flashBox = document.getElementById("flash");
  var flashTimer = null;
  function flash(kind, text) {
    if (!flashBox) { return; }
    flashBox.innerHTML = "";
    var p = document.createElement("p");
    p.className = "flash " + kind;
    p.textContent = text;
    flashBox.appendChild(p);
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { flashBox.innerHTML = ""; }, 12000);
  }

  // The confirm dialog for drain, undrain and expire.
  var dlg = document.getElementById("confirm");
  if (!dlg) { return; }
  var form = document.getElementById("confirm-form");
  var reason = document.getElementById("reason");
  var ttl = document.getElementById("ttl");
  var pending = null;

  document.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-action]");
    if (!b) { return; }
    var a = b.dataset.action;
    var title = document.getElementById("confirm-title");
    var text = document.getElementById("confirm-text");
    var ok = document.getElementById("confirm-ok");
    document.getElementById("ttl-row").hidden = a !== "drain";
    if (a === "drain") {
      pending = { url: "/api/v1/sites/" + encodeURIComponent(b.dataset.site) + "/drain", done: "Site " + b.dataset.site + " drained" };
      title.textContent = "Drain site " + b.dataset.site;
      text.textContent = "Every endpoint in " + b.dataset.site + " leaves routing until the drain expires or is undone.";
      ok.textContent = "Drain";
      ok.className = "danger";
    } else if (a === "undrain") {
      pending = { url: "/api/v1/sites/" + encodeURIComponent(b.dataset.site) + "/undrain", done: "Site " + b.dataset.site + " undrained" };
      title.textContent = "Undrain site " + b.dataset.site;
      text.textContent = "Endpoints in " + b.dataset.site + " return to routing as soon as their verdicts say up.";
      ok.textContent = "Undrain";
      ok.className = "primary";
    } else if (a === "expire") {
      pending = { url: "/api/v1/overrides/" + encodeURIComponent(b.dataset.id) + "/expire", done: "Override " + b.dataset.id + " ended" };
      title.textContent = "End override";
      text.textContent = "Override " + b.dataset.id + " stops applying now.";
      ok.textContent = "End now";
      ok.className = "primary";
    } else {
      return;
    }
    reason.value = "";
    dlg.showModal();
    reason.focus();
  });

  document.getElementById("confirm-cancel").addEventListener("click", function () { dlg.close(); });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!pending) { return; }
    var why = reason.value.trim();
    if (!why) {
      reason.setCustomValidity("Say why: the reason is recorded in the audit log.");
      reason.reportValidity();
      reason.setCustomValidity("");
      return;
    }
    var body = { reason: why };
    if (!document.getElementById("ttl-row").hidden) { body.ttl = ttl.value; }
    var p = pending;
    dlg.close();
    fetch(p.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Firebreak-Request": "1" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (r.ok) {
          flash("good", p.done + ".");
        } else if (r.status === 401 || (r.status === 403 && document.body.dataset.signedIn !== "true")) {
          flash("bad", "Refused: you are not signed in. Sign in with an operator token to change routing.");
        } else if (r.status === 403) {
          flash("bad", "Refused: " + (j.error || "your role may not do this") + ".");
        } else {
          flash("bad", "Failed (" + r.status + "): " + (j.error || r.statusText));
        }
        schedule();
      });
    }).catch(function (err) { flash("bad", "Failed: " + err); });
  });
})();
