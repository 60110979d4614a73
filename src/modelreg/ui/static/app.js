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
  var NODE_FILLS = { "this": "#dbeafe", parent: "#f1f5f9", child: "#dcfce7", run: "#ffedd5", dataset: "#f3e8ff" };
  var LABEL_CHARS = 26; // per line of a node's label; the whole label is the node's tooltip
  var GRAPH_FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";

  function shortLabel(label) {
    return String(label).split("\n").map(function (line) {
      return line.length > LABEL_CHARS ? line.slice(0, LABEL_CHARS - 1) + "\u2026" : line;
    }).join("\n");
  }

  /* The lineage graph. Each node is a box around its label, sized to it before the layout
     runs, so dagre spaces the boxes themselves and no two labels can overlap; a label longer
     than LABEL_CHARS a line is cut with an ellipsis, whole in the node's tooltip and in the
     list under the graph. Edge labels sit on an opaque background at their edge's middle. */
  function drawGraph() {
    var box = document.querySelector("[data-graph]");
    if (!box || typeof cytoscape === "undefined") return;
    var data = readJSON(box.getAttribute("data-graph"));
    var elements = data.nodes.map(function (n) {
      return { data: { id: n.id, label: shortLabel(n.label), full: n.label, kind: n.kind, href: n.href } };
    }).concat(data.edges.map(function (e, i) {
      return { data: { id: "e" + i, source: e.source, target: e.target, label: e.label || "" } };
    }));
    var cy = cytoscape({
      container: box,
      elements: elements,
      userZoomingEnabled: false,
      boxSelectionEnabled: false,
      maxZoom: 1.25,
      style: [
        { selector: "node", style: {
          shape: "round-rectangle", label: "data(label)", "font-size": 11, "font-family": GRAPH_FONT,
          "text-valign": "center", "text-halign": "center", "text-wrap": "wrap", color: "#0f172a",
          "border-width": 1.5,
          "border-color": function (n) { return NODE_COLORS[n.data("kind")] || "#333"; },
          "background-color": function (n) { return NODE_FILLS[n.data("kind")] || "#fff"; },
        } },
        { selector: "node[kind = 'this']", style: { "font-weight": "bold", "border-width": 3 } },
        { selector: "node[kind = 'dataset']", style: { shape: "barrel" } },
        { selector: "node[kind = 'run']", style: { shape: "cut-rectangle" } },
        { selector: "edge", style: {
          width: 1.5, "line-color": "#94a3b8", "target-arrow-color": "#94a3b8",
          "target-arrow-shape": "triangle", "curve-style": "bezier",
          label: "data(label)", "font-size": 9, "font-family": GRAPH_FONT, color: "#475569",
          "text-background-color": "#f8fafc", "text-background-opacity": 1,
          "text-background-padding": 2,
        } },
      ],
      layout: { name: "preset" },
    });
    // Each box fits its label (cytoscape measures the text as it will draw it), with room.
    cy.nodes().forEach(function (n) {
      var text = n.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true });
      var extra = n.data("kind") === "dataset" ? 28 : 18;
      n.style({ width: Math.ceil(text.w) + extra, height: Math.ceil(text.h) + 12 });
    });
    cy.layout({ name: "dagre", rankDir: "TB", nodeSep: 30, rankSep: 56, edgeSep: 12, padding: 16 }).run();
    cy.on("tap", "node", function (event) {
      var href = event.target.data("href");
      if (href) window.location.href = href;
    });
    cy.on("mouseover", "node", function (event) {
      box.setAttribute("title", event.target.data("kind") + ": " + event.target.data("full").replace("\n", " "));
      box.style.cursor = event.target.data("href") ? "pointer" : "";
    });
    cy.on("mouseout", "node", function () {
      box.removeAttribute("title");
      box.style.cursor = "";
    });
    registry.graph = cy;
    box.setAttribute("data-nodes", String(cy.nodes().length));
    box.setAttribute("data-edges", String(cy.edges().length));
  }

  /* The audit page: the chain check re-hashes events, so it is fetched after load. */
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
        var since = check.since
          ? " (the " + (check.events - check.since) + " since event " + check.since +
            ", found sound before and unchanged since, were re-hashed)"
          : "";
        box.textContent = check.ok
          ? "The chain of " + check.events + " events verifies" + since + ": no event was" +
            " changed, removed or inserted. Head " + check.head.slice(0, 12) + "."
          : "The chain does NOT verify at event " + check.bad_seq + ": " + check.reason;
      })
      .catch(function (error) {
        box.classList.add("bad");
        box.textContent = "The chain could not be checked: " + error.message;
      })
      .then(function () { box.setAttribute("data-done", "1"); });
  }

  /* A table wider than its box: data-more is set while columns are hidden to the right, and
     the stylesheet fades the box's right edge so that the cut shows (removed once scrolled to
     the end). */
  function markScrolling() {
    var boxes = document.querySelectorAll(".scroll");
    function update(box) {
      box.toggleAttribute("data-more", box.scrollWidth - box.clientWidth - box.scrollLeft > 1);
    }
    boxes.forEach(function (box) {
      box.addEventListener("scroll", function () { update(box); }, { passive: true });
      update(box);
    });
    window.addEventListener("resize", function () { boxes.forEach(update); });
  }

  function start() {
    markScrolling();
    drawCharts();
    drawGraph();
    verifyAudit();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
