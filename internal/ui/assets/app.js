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

  // Runbooks panel: polls the runs API (1 s while a run is running, else
  // 5 s); hidden when this node serves no runs.
  var runsBox = document.getElementById("runbooks");
  var pollRuns = null;
  if (page === "dashboard" && runsBox) {
    var runsList = document.getElementById("runs-list");
    var el = function (tag, attrs, kids) {
      var e = document.createElement(tag);
      Object.keys(attrs || {}).forEach(function (k) {
        if (k === "text") { e.textContent = attrs[k]; } else if (k === "width") { e.style.width = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
      });
      (kids || []).forEach(function (c) { if (c) { e.appendChild(c); } });
      return e;
    };
    var fmtDur = function (ms) {
      var s = Math.round(ms / 1000);
      if (s < 60) { return s + "s"; }
      if (s < 3600) { return Math.floor(s / 60) + "m " + (s % 60) + "s"; }
      return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    };
    var when = function (t) { return t ? new Date(t).toISOString().slice(11, 19) + " UTC" : "–"; };
    var pillClass = { done: "s-up", failed: "s-down", aborted: "s-down", paused: "s-degraded", running: "s-running" };
    var renderRun = function (p) {
      var st = p.status || "unknown";
      var tot = { total: 0, done: 0, failed: 0 };
      (p.steps || []).forEach(function (s) { tot.total += s.total; tot.done += s.done; tot.failed += s.failed; });
      var meta = "started " + when(p.started) + " · updated " + when(p.updated) + " · " + tot.done + " / " + tot.total + " targets done";
      if (tot.failed) { meta += " · " + tot.failed + " failed"; }
      if (st === "running" || st === "paused") { meta += " · ETA " + (p.eta > 0 ? fmtDur(p.eta / 1e6) : "unknown"); }
      var rows = (p.steps || []).map(function (s) {
        var pct = function (n) { return s.total ? (100 * n / s.total).toFixed(2) + "%" : "0"; };
        var bar = el("div", { "class": "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(s.total), "aria-valuenow": String(s.done),
          "aria-label": s.name + ": " + s.done + " of " + s.total + " done" }, [
          el("span", { "class": "seg done", width: pct(s.done) }),
          el("span", { "class": "seg running", width: pct(s.running) }),
          el("span", { "class": "seg failed", width: pct(s.failed) }),
          el("span", { "class": "seg blocked", width: pct(s.blocked) })]);
        return el("tr", { "data-step": s.name }, [el("td", { text: s.name }), el("td", {}, [bar]),
          el("td", { "class": "num", "data-count": "done", text: s.done + " / " + s.total }),
          el("td", { "class": "num", text: String(s.running) }), el("td", { "class": "num", "data-count": "failed", text: String(s.failed) }),
          el("td", { "class": "num", text: String(s.blocked) }), el("td", { "class": "num", text: String(s.retries) })]);
      });
      var head = el("tr", {}, ["Step", "Progress", "Done", "Running", "Failed", "Blocked", "Retries"].map(function (h) { return el("th", { text: h }); }));
      var kids = [
        el("header", {}, [el("h3", { text: (p.runbook || "runbook") + " " }, [el("span", { "class": "muted small", text: p.runId })]),
          el("span", { "class": "pill " + (pillClass[st] || ""), text: st })]),
        el("p", { "class": "muted small", text: meta }),
        el("div", { "class": "scroll" }, [el("table", { "class": "steps" }, [el("thead", {}, [head]), el("tbody", {}, rows)])])];
      if (p.failures && p.failures.length) {
        kids.push(el("ul", { "class": "failures" }, p.failures.slice().reverse().map(function (f) {
          return el("li", { "data-target": f.target }, [el("span", { "class": "tag " + (f.final ? "bad" : "warn"), text: f.final ? "failed" : "retried" }),
            el("span", { text: " " + f.step + " · " }), el("strong", { text: f.target }), el("span", { "class": "muted", text: " — " + f.reason })]);
        })));
      }
      if (st === "running" || st === "paused" || st === "created") {
        var ctls = st === "paused" ? ["resume", "abort"] : ["pause", "abort"];
        kids.push(el("div", { "class": "actions" }, ctls.map(function (c) {
          return el("button", { type: "button", "class": c === "abort" ? "small danger-outline" : "small", "data-action": "run",
            "data-run": p.runId, "data-control": c, text: c.charAt(0).toUpperCase() + c.slice(1) + "…" });
        })));
      }
      return el("article", { "class": "run " + (pillClass[st] || ""), "data-run": p.runId, "data-status": st }, kids);
    };
    var runsTimer = null;
    pollRuns = function () {
      var next = 5000;
      fetch("/api/v1/runs", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 404) { runsBox.hidden = true; next = 30000; return null; }
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        })
        .then(function (list) {
          if (!list) { return null; }
          list.sort(function (a, b) { return (b.state.started || "").localeCompare(a.state.started || ""); });
          return Promise.all(list.slice(0, 5).map(function (run) {
            return fetch("/api/v1/runs/" + encodeURIComponent(run.id), { credentials: "same-origin", cache: "no-store" })
              .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
          }));
        })
        .then(function (progs) {
          if (!progs) { return; }
          runsList.innerHTML = "";
          if (!progs.length) { runsList.appendChild(el("p", { "class": "muted", text: "No runbook runs yet." })); }
          progs.forEach(function (p) {
            runsList.appendChild(renderRun(p));
            if (p.status === "running") { next = 1000; }
          });
          runsBox.hidden = false;
        })
        .catch(function () { /* keep the last rendering; retry later */ })
        .finally(function () { clearTimeout(runsTimer); runsTimer = setTimeout(pollRuns, next); });
    };
    pollRuns();
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
    } else if (a === "run") {
      var ctl = b.dataset.control, run = b.dataset.run;
      pending = { url: "/api/v1/runs/" + encodeURIComponent(run) + "/" + ctl, done: "Run " + run + ": " + ctl + " requested" };
      title.textContent = { pause: "Pause run ", resume: "Resume run ", abort: "Abort run " }[ctl] + run;
      text.textContent = {
        pause: "No new action starts; running ones finish. Resume continues where it stopped.",
        resume: "The run goes on from where it stopped.",
        abort: "The run ends once running actions finish; targets not reached yet stay as they are."
      }[ctl];
      ok.textContent = ctl.charAt(0).toUpperCase() + ctl.slice(1);
      ok.className = ctl === "abort" ? "danger" : "primary";
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
        if (pollRuns) { pollRuns(); }
      });
    }).catch(function (err) { flash("bad", "Failed: " + err); });
  });
})();
