/* Draws the report chart from the JSON block written by the server (|tojson).
   Labels are data (source names, keywords): Chart.js draws them as canvas text,
   never as HTML. */
(function () {
  "use strict";
  var canvas = document.getElementById("report-chart");
  var block = document.getElementById("report-chart-data");
  if (!canvas || !block || typeof Chart === "undefined") { return; }
  var spec = JSON.parse(block.textContent);
  var palette = ["#1f5fbf", "#c0392b", "#27ae60", "#8e44ad", "#e67e22", "#16a085", "#7f8c8d",
                 "#d35400", "#2c3e50", "#f1c40f"];
  // One colour per series in every chart: answered blue, missed red, all calls grey.
  var SERIES = {answered: palette[0], missed: palette[1], calls: "#5d6d7e", taken: palette[0],
                missed_rung: palette[1]};
  var type = spec.type, data, options = {responsive: true, maintainAspectRatio: false,
                                          animation: false, plugins: {legend: {display: true}}};
  if (type === "matrix") {
    var values = spec.datasets[0].data.map(function (c) { return {x: String(c.x), y: c.y, v: c.v}; });
    var max = Math.max.apply(null, values.map(function (c) { return c.v; }).concat([1]));
    data = {datasets: [{
      label: spec.datasets[0].label, data: values,
      backgroundColor: function (ctx) {
        var v = ctx.raw ? ctx.raw.v : 0;
        return "rgba(31, 95, 191, " + (0.05 + 0.95 * v / max).toFixed(3) + ")";
      },
      borderColor: "#ffffff", borderWidth: 1,
      width: function (ctx) { var a = ctx.chart.chartArea; return a ? a.width / 24 - 1 : 10; },
      height: function (ctx) { var a = ctx.chart.chartArea; return a ? a.height / 7 - 1 : 10; }
    }]};
    options.scales = {
      x: {type: "category", labels: spec.labels, offset: true, grid: {display: false}},
      y: {type: "category", labels: spec.ylabels, offset: true, reverse: false, grid: {display: false}}
    };
    options.plugins.legend.display = false;
    options.plugins.tooltip = {callbacks: {
      title: function () { return ""; },
      label: function (ctx) { return ctx.raw.y + " " + ctx.raw.x + ":00 — " + ctx.raw.v; }
    }};
  } else {
    data = {labels: spec.labels, datasets: spec.datasets.map(function (ds, i) {
      var color = SERIES[ds.key] || palette[i % palette.length];
      var out = {label: ds.label, key: ds.key, data: ds.data, backgroundColor: color, borderColor: color};
      if (type === "doughnut") { out.backgroundColor = spec.labels.map(function (_, j) { return palette[j % palette.length]; }); }
      if (type === "line") { out.fill = false; out.tension = 0.2; out.pointRadius = 2; }
      if (type === "line" && typeof spec.partial === "number") {
        // today is counted so far: the segment into it dashed, its point hollow
        out.segment = {borderDash: function (ctx) { return ctx.p1DataIndex >= spec.partial ? [6, 4] : undefined; }};
        out.pointStyle = ds.data.map(function (_, j) { return j === spec.partial ? "rectRot" : "circle"; });
        out.pointRadius = ds.data.map(function (_, j) { return j === spec.partial ? 5 : 2; });
        out.spanGaps = false;
      }
      return out;
    })};
    if (type === "line") { options.scales = {y: {beginAtZero: true, suggestedMax: 1}}; }
    if (type === "bar") {
      options.scales = {x: {stacked: !!spec.stacked}, y: {stacked: !!spec.stacked, beginAtZero: true}};
      // one bar far above the others: the axis is cut above the second (the label says so)
      if (spec.y_max) { options.scales.y.max = spec.y_max; }
    }
  }
  var chart = new Chart(canvas, {type: type, data: data, options: options});
  canvas.setAttribute("data-drawn", "1");
  window.reportChart = chart;
})();
