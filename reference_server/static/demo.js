// The demo page: one question over SSE, a WebSocket, or both in turn, each event
// shown as it arrives, with the figures of each stream.
//
// What a frontend author should take from it:
// * the EventSource is closed on stream_end (and on any error), so a finished
//   stream does not reconnect and run the question again;
// * Stop closes the EventSource, or sends {"type": "cancel"} on the WebSocket and
//   lets the server end the stream (error "cancelled", stream_end, close 1000);
// * ?api=http://host:port points the page at another backend (a frontend on its
//   own origin, like the seed's API_BASE): that backend must allow this origin.
//
// window.agentDemo holds every run (events, figures, state) for tests and curious users.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(location.search);
  var API = (params.get("api") || location.origin).replace(/\/+$/, "");
  var SSE_PATH = params.get("sse_path") || "/agent/stream";
  var WS_PATH = params.get("ws_path") || "/ws/agent/stream";
  var LOOPBACK = ["localhost", "127.0.0.1", "[::1]", "::1"];
  var apiHost = new URL(API).hostname;
  var clocksShared = LOOPBACK.indexOf(apiHost) >= 0 || apiHost === location.hostname;
  var encoder = new TextEncoder();

  var demo = window.agentDemo = { api: API, runs: [], current: null, idle: true, clocksShared: clocksShared };

  // -- figures ----------------------------------------------------------------------

  function median(xs) {
    if (!xs.length) return null;
    var s = xs.slice().sort(function (a, b) { return a - b; });
    var m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  function ms(x) { return x === null || x === undefined ? "–" : x.toFixed(1) + " ms"; }

  function figures(run) {
    var lat = run.latencies;
    return {
      ttfe_ms: run.firstAt === null ? null : run.firstAt - run.startedAt,
      latency_median_ms: clocksShared ? median(lat) : null,
      latency_max_ms: clocksShared && lat.length ? Math.max.apply(null, lat) : null,
      events: run.events.length,
      bytes: run.bytes,
      duration_ms: run.endedAt === null ? null : run.endedAt - run.startedAt
    };
  }

  function showFigures(run) {
    var f = run.figures = figures(run);
    var cell = function (name) {
      return document.querySelector('tr[data-figure="' + name + '"] td[data-col="' + run.transport + '"]');
    };
    cell("ttfe").textContent = ms(f.ttfe_ms);
    cell("latency").textContent = clocksShared ? ms(f.latency_median_ms) + " / " + ms(f.latency_max_ms) : "n/a";
    cell("events").textContent = String(f.events);
    cell("bytes").textContent = f.bytes.toLocaleString("en") + " B";
    cell("duration").textContent = ms(f.duration_ms);
  }

  // -- rendering of each event type ------------------------------------------------

  var analysisText = "";

  function reset() {
    $("steps").textContent = "";
    $("attempts").textContent = "";
    $("reflections").innerHTML = '<p class="dim">None yet.</p>';
    $("verify").innerHTML = '<p class="dim">Not yet.</p>';
    $("chart").textContent = "";
    $("table").textContent = "";
    $("markdown").textContent = "";
    $("final").textContent = "–";
    $("final").className = "dim";
    analysisText = "";
  }

  function step(kind, text) {
    var li = document.createElement("li");
    li.className = kind;
    li.textContent = text;
    $("steps").appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }

  function attemptBox(container, attempt, title) {
    var id = container.id + "-" + attempt;
    var box = document.getElementById(id);
    if (!box) {
      if (container.querySelector("p.dim")) container.textContent = "";
      box = document.createElement("div");
      box.id = id;
      box.className = "attempt";
      var h = document.createElement("h3");
      h.textContent = title + " " + attempt;
      var pre = document.createElement("pre");
      box.appendChild(h);
      box.appendChild(pre);
      container.appendChild(box);
    }
    return box;
  }

  function table(rows, columns) {
    var t = document.createElement("table");
    var head = t.createTHead().insertRow();
    columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
    var body = t.createTBody();
    rows.forEach(function (r) {
      var tr = body.insertRow();
      columns.forEach(function (c) { tr.insertCell().textContent = r[c] === null ? "" : String(r[c]); });
    });
    return t;
  }

  var render = {
    start: function (e) { setStatus("Streaming over " + label(demo.current.transport) + "…"); step("start", e.message || "start"); },
    progress: function (e) { step("progress", e.stage + ": " + e.message); },
    chain_of_thought: function (e) { step("thought", e.content); },
    code_chunk: function (e) {
      var pre = attemptBox($("attempts"), e.attempt || 1, "Attempt").querySelector("pre");
      pre.textContent += e.chunk;
    },
    code_generated: function (e) {
      var box = attemptBox($("attempts"), e.attempt || 1, "Attempt");
      box.querySelector("pre").textContent = e.code;
      box.classList.add("done");
    },
    reflection_chunk: function (e) {
      var box = attemptBox($("reflections"), e.attempt || 1, "Reflection on attempt");
      box.querySelector("pre").textContent += e.chunk;
    },
    reflection: function (e) {
      var box = attemptBox($("reflections"), e.attempt || 1, "Reflection on attempt");
      box.querySelector("pre").textContent = e.content;
      if (e.error) {
        var p = document.createElement("p");
        p.className = "failure";
        p.textContent = "Attempt " + (e.attempt || 1) + " failed: " + e.error;
        box.insertBefore(p, box.querySelector("pre"));
      }
      var code = document.getElementById("attempts-" + (e.attempt || 1));
      if (code) code.classList.add("failed");
    },
    verification: function (e) {
      var v = $("verify");
      v.textContent = "";
      var pct = Math.round(e.confidence * 100);
      var meter = document.createElement("meter");
      meter.min = 0; meter.max = 1; meter.value = e.confidence; meter.id = "confidence";
      var p = document.createElement("p");
      p.textContent = "Confidence " + pct + "% ";
      p.appendChild(meter);
      v.appendChild(p);
      var ul = document.createElement("ul");
      (e.checks || []).forEach(function (c) {
        var li = document.createElement("li");
        li.className = c.passed ? "pass" : "fail";
        li.textContent = (c.passed ? "✓ " : "✗ ") + c.check;
        ul.appendChild(li);
      });
      v.appendChild(ul);
    },
    data_ready: function (e) {
      var d = e.data || {};
      window.AgentChart.draw($("chart"), d.chart);
      $("table").textContent = "";
      if (d.rows && d.columns) $("table").appendChild(table(d.rows, d.columns));
    },
    analysis_chunk: function (e) {
      analysisText += e.chunk;
      $("markdown").innerHTML = window.AgentMarkdown.render(analysisText);
    },
    complete: function (e) {
      var d = e.data || {};
      if (typeof d.analysis === "string") {
        analysisText = d.analysis;
        $("markdown").innerHTML = window.AgentMarkdown.render(analysisText);
      }
      $("final").className = "ok";
      $("final").textContent = "Complete: " + d.rows + " rows, " + d.attempts + " attempt(s), confidence " + d.confidence + ".";
    },
    error: function (e) {
      $("final").className = "failure";
      $("final").textContent = "Error" + (e.code ? " (" + e.code + ")" : "") + ": " + e.message;
    },
    stream_end: function () { }
  };

  // -- one run over one transport ----------------------------------------------------

  function label(t) { return t === "ws" ? "WebSocket" : "SSE"; }
  function setStatus(text) { $("status").textContent = text; }

  function query() {
    var q = new URLSearchParams();
    q.set("question", $("question").value);
    if ($("dataset").value) q.set("dataset", $("dataset").value);
    if ($("model").value) q.set("model", $("model").value);
    return q.toString();
  }

  function receive(run, text, bytes) {
    var now = performance.now();
    var wall = Date.now() / 1000;
    var event;
    try { event = JSON.parse(text); } catch (err) { run.problems.push("not JSON: " + text.slice(0, 80)); return; }
    if (run.firstAt === null) run.firstAt = now;
    run.bytes += bytes;
    run.events.push(event);
    if (typeof event.ts === "number") run.latencies.push((wall - event.ts) * 1000);
    var draw = render[event.type];
    if (draw) draw(event); else step("unknown", "(" + event.type + ")");
    if (event.type === "stream_end") finish(run, "done");
    else showFigures(run);
  }

  function finish(run, state, why) {
    if (run.state !== "running" && run.state !== "stopping") return;
    run.state = state;
    run.endedAt = performance.now();
    if (run.source) { run.source.close(); run.sourceState = run.source.readyState; }  // no reconnect after the end
    if (why) run.problems.push(why);
    showFigures(run);
    var done = run.onDone;
    run.onDone = null;
    if (done) done(run);
  }

  function startRun(transport) {
    return new Promise(function (resolve) {
      var run = {
        transport: transport, state: "running", events: [], latencies: [], bytes: 0, problems: [],
        startedAt: performance.now(), firstAt: null, endedAt: null, source: null, socket: null,
        sourceState: null, closeCode: null, onDone: resolve
      };
      demo.runs.push(run);
      demo.current = run;
      reset();
      showFigures(run);
      setStatus("Connecting over " + label(transport) + "…");
      if (transport === "sse") {
        var source = run.source = new EventSource(API + SSE_PATH + "?" + query());
        source.onmessage = function (m) {
          var framing = (m.lastEventId ? "id: " + m.lastEventId + "\n" : "").length + "data: \n\n".length;
          receive(run, m.data, encoder.encode(m.data).length + framing);
        };
        source.onerror = function () {
          // a refused request (403 origin, 422, 503) or a dropped stream: never let
          // the browser retry by itself, that would run the question again
          finish(run, "failed", run.events.length ? "the connection was lost mid-stream" :
            "the stream could not be opened (refused, or not allowed from this origin)");
        };
      } else {
        var ws = run.socket = new WebSocket(API.replace(/^http/, "ws") + WS_PATH + "?" + query());
        ws.onmessage = function (m) {
          if (typeof m.data !== "string") { run.problems.push("binary message"); return; }
          receive(run, m.data, encoder.encode(m.data).length);
        };
        ws.onclose = function (c) {
          run.closeCode = c.code;
          if (run.state === "done") return;
          finish(run, run.state === "stopping" ? "stopped" : "failed",
            "closed with " + c.code + (run.events.length ? " before stream_end" : " before any event (refused?)"));
        };
      }
    }).then(function (run) {
      setStatus(label(run.transport) + ": " + run.state + (run.problems.length ? " (" + run.problems.join("; ") + ")" : "") + ".");
      return run;
    });
  }

  function stop() {
    var run = demo.current;
    if (!run || run.state !== "running") return;
    demo.stopRequested = true;
    if (run.source) {
      run.state = "stopping";
      finish(run, "stopped");
    } else if (run.socket) {
      run.state = "stopping";
      setStatus("Cancelling…");
      try { run.socket.send(JSON.stringify({ type: "cancel" })); } catch (err) { run.socket.close(); }
    }
  }

  function clearFigures() {
    document.querySelectorAll("#figure-table td").forEach(function (td) { td.textContent = "–"; });
  }

  function ask(ev) {
    if (ev) ev.preventDefault();
    if (!demo.idle) return;
    var choice = document.querySelector('input[name="transport"]:checked').value;
    var order = choice === "both" ? ["sse", "ws"] : [choice];
    demo.idle = false;
    demo.stopRequested = false;
    demo.mode = choice;
    clearFigures();
    document.body.dataset.mode = choice;
    $("start").disabled = true;
    $("stop").disabled = false;
    var chain = Promise.resolve();
    order.forEach(function (t) {
      chain = chain.then(function () { return demo.stopRequested ? null : startRun(t); });
    });
    chain.then(function () {
      demo.idle = true;
      $("start").disabled = false;
      $("stop").disabled = true;
    });
  }

  function loadDatasets() {
    fetch(API + "/datasets").then(function (r) { return r.ok ? r.json() : []; }).then(function (list) {
      var select = $("dataset");
      (list || []).forEach(function (d) {
        var name = typeof d === "string" ? d : d.name;
        if (!name || name === "all") return;
        var o = document.createElement("option");
        o.value = o.textContent = name;
        select.appendChild(o);
      });
    }).catch(function () { /* another backend may have no catalogue: "all" stays */ });
  }

  $("ask").addEventListener("submit", ask);
  $("stop").addEventListener("click", stop);
  loadDatasets();
  document.body.dataset.ready = "1";
})();
