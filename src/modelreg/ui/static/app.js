/* modelreg web UI: draws the charts and the lineage graph from the JSON blocks the server
   rendered into each page. No inline script: the page's Content-Security-Policy allows only
   files served from this origin. */
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
  var registry = (window.modelreg = { charts: {}, graph: null });
  var WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  /* Data for uPlot: [xs, ys...]. A block holds either {x, time, series: [{label, values}]}
     (one shared x) or {points: {label: [{step, value}]}} (series with their own steps). */
  function toColumns(data, axis) {
    if (data.points) {
      var labels = Object.keys(data.points);
      var steps = {};
      labels.forEach(function (label) {
        data.points[label].forEach(function (p) { steps[p.step] = true; });
      });
      var xs = Object.keys(steps).map(Number).sort(function (a, b) { return a - b; });
      var index = {};
      xs.forEach(function (x, i) { index[x] = i; });
      var columns = [xs];
      labels.forEach(function (label) {
        var ys = xs.map(function () { return null; });
        data.points[label].forEach(function (p) { ys[index[p.step]] = p.value; });
        columns.push(ys);
      });
      return { columns: columns, labels: labels };
    }
    var x = data.x;
    if (axis === "time" && data.time) {
      x = data.time.map(function (t) { return Date.parse(t) / 1000; });
    }
    return {
      columns: [x].concat(data.series.map(function (s) { return s.values; })),
      labels: data.series.map(function (s) { return s.label; }),
    };
  }

  function drawChart(figure, axis) {
    var id = figure.getAttribute("data-chart");
    var data = readJSON(id);
    if (!data || typeof uPlot === "undefined") return;
    axis = axis || figure.getAttribute("data-x");
    var made = toColumns(data, axis);
    var old = registry.charts[id];
    if (old) old.destroy();
    var xLabel = { version: "version", step: "step", time: "time registered" }[axis] || axis;
    var width = Math.max(260, Math.min(figure.clientWidth || 600, 900));
    var opts = {
      width: width,
      height: 220,
      scales: { x: { time: axis === "time" } },
      axes: [axis === "time" ? { label: xLabel } : { label: xLabel, incrs: WHOLE }, {}],
      series: [{ label: xLabel }].concat(made.labels.map(function (label, i) {
        return {
          label: label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          spanGaps: true,
          points: { show: made.columns[0].length <= 200 },
        };
      })),
    };
    var chart = new uPlot(opts, made.columns, figure);
    registry.charts[id] = chart;
    figure.setAttribute("role", "img");
    figure.setAttribute("aria-label", describe(figure.getAttribute("data-title"), made, xLabel));
    figure.setAttribute("data-points", String(made.columns[0].length));
    figure.setAttribute("data-series", String(made.labels.length));
  }

  /* A text alternative for a chart: its series, their number of points and last values. */
  function describe(title, made, xLabel) {
    var parts = made.labels.map(function (label, i) {
      var ys = made.columns[i + 1].filter(function (y) { return y !== null; });
      var last = ys.length ? ys[ys.length - 1] : null;
      return label + ": " + ys.length + " points" + (last === null ? "" : ", last " + last);
    });
    return title + " by " + xLabel + ". " + parts.join("; ");
  }

  function drawCharts() {
    document.querySelectorAll("figure.chart").forEach(function (figure) { drawChart(figure); });
    document.querySelectorAll("select[data-axis-for]").forEach(function (select) {
      select.addEventListener("change", function () {
        var box = document.getElementById(select.getAttribute("data-axis-for"));
        box.querySelectorAll("figure.chart").forEach(function (figure) {
          figure.setAttribute("data-x", select.value);
          drawChart(figure, select.value);
        });
      });
    });
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        document.querySelectorAll("figure.chart").forEach(function (figure) { drawChart(figure); });
      }, 200);
    });
  }

  var NODE_COLORS = { "this": "#2563eb", parent: "#64748b", child: "#16a34a", run: "#ea580c", dataset: "#9333ea" };

  function drawGraph() {
    var box = document.querySelector("[data-graph]");
    if (!box || typeof cytoscape === "undefined") return;
    var data = readJSON(box.getAttribute("data-graph"));
    var elements = data.nodes.map(function (n) {
      return { data: { id: n.id, label: n.label, kind: n.kind, href: n.href } };
    }).concat(data.edges.map(function (e, i) {
      return { data: { id: "e" + i, source: e.source, target: e.target, label: e.label || "" } };
    }));
    var cy = cytoscape({
      container: box,
      elements: elements,
      userZoomingEnabled: false,
      boxSelectionEnabled: false,
      style: [
        { selector: "node", style: {
          label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "text-wrap": "wrap", "text-max-width": 150,
          width: 18, height: 18, "background-color": function (n) { return NODE_COLORS[n.data("kind")] || "#333"; },
        } },
        { selector: "node[kind = 'this']", style: { width: 26, height: 26, "font-weight": "bold" } },
        { selector: "node[kind = 'run']", style: { shape: "round-rectangle" } },
        { selector: "node[kind = 'dataset']", style: { shape: "barrel" } },
        { selector: "edge", style: {
          width: 1.5, "line-color": "#94a3b8", "target-arrow-color": "#94a3b8",
          "target-arrow-shape": "triangle", "curve-style": "bezier",
          label: "data(label)", "font-size": 9, color: "#475569", "text-rotation": "autorotate",
        } },
      ],
      layout: { name: "dagre", rankDir: "TB", nodeSep: 90, rankSep: 70, padding: 20 },
    });
    cy.on("tap", "node", function (event) {
      var href = event.target.data("href");
      if (href) window.location.href = href;
    });
    registry.graph = cy;
    box.setAttribute("data-nodes", String(cy.nodes().length));
    box.setAttribute("data-edges", String(cy.edges().length));
  }

  /* The audit page: the chain check re-hashes every event, so it is fetched after load. */
  function verifyAudit() {
    var box = document.querySelector("[data-verify]");
    if (!box) return;
    fetch(box.getAttribute("data-verify"), { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("the check answered " + response.status);
        return response.json();
      })
      .then(function (check) {
        box.classList.add(check.ok ? "ok" : "bad");
        box.textContent = check.ok
          ? "The chain of " + check.events + " events verifies: no event was changed, removed" +
            " or inserted. Head " + check.head.slice(0, 12) + "."
          : "The chain does NOT verify at event " + check.bad_seq + ": " + check.reason;
      })
      .catch(function (error) {
        box.classList.add("bad");
        box.textContent = "The chain could not be checked: " + error.message;
      })
      .then(function () { box.setAttribute("data-done", "1"); });
  }

  function start() {
    drawCharts();
    drawGraph();
    verifyAudit();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
