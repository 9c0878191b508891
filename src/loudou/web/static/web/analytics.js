/* loudou analytics charts (plotly). Each chart is a div with data-chart (its kind) and
   data-source (the id of a json_script element the server rendered: labels already in the
   user's language, numbers as numbers). No data is built into script text. */
(function () {
  "use strict";

  var INK = "#1d2433";
  var GRID = "#e6eaf0";

  function baseLayout(extra) {
    var layout = {
      margin: { l: 60, r: 20, t: 10, b: 60 },
      height: 360,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: getComputedStyle(document.documentElement).fontFamily, size: 12, color: INK },
      legend: { orientation: "h", x: 0, y: 1.12 },
      dragmode: false,
      hoverlabel: { bgcolor: "#18233a", font: { color: "#fff" } },
      xaxis: { automargin: true },
      yaxis: { automargin: true, gridcolor: GRID, zerolinecolor: "#c7cfdb" }
    };
    Object.keys(extra || {}).forEach(function (k) {
      var value = extra[k];
      var merge = value && typeof value === "object" && !Array.isArray(value) && layout[k];
      layout[k] = merge ? Object.assign({}, layout[k], value) : value;
    });
    return layout;
  }

  var CONFIG = { displayModeBar: false, responsive: true };

  // Grouped bars: one series per rate or duration; optional asymmetric error bars on the last.
  function drawBars(el, data) {
    var last = data.series.length - 1;
    var traces = data.series.map(function (s, i) {
      var trace = {
        type: "bar",
        name: s.name,
        x: data.labels,
        y: s.values,
        marker: { color: s.colour },
        hovertemplate: "%{x}<br>" + s.name + ": %{y}<extra></extra>"
      };
      if (i === last && data.high) {
        trace.error_y = { type: "data", symmetric: false, array: data.high, arrayminus: data.low, color: "#18233a", thickness: 1.2, width: 5 };
      }
      return trace;
    });
    var range = data.low ? { range: [0, 105] } : {};
    Plotly.newPlot(el, traces, baseLayout({ yaxis: Object.assign({ title: { text: data.axis } }, range), barmode: "group" }), CONFIG);
  }

  // The flow: start and end absolute, the steps signed (green up, red down).
  function drawWaterfall(el, data) {
    var part = data[el.dataset.measure];
    var trace = {
      type: "waterfall",
      orientation: "v",
      x: part.labels,
      y: part.values,
      measure: part.measure,
      text: part.text,
      textposition: "outside",
      cliponaxis: false,
      hoverinfo: "x+text",
      connector: { line: { color: "#c7cfdb", width: 1 } },
      increasing: { marker: { color: "#3aa76d" } },
      decreasing: { marker: { color: "#d9534f" } },
      totals: { marker: { color: "#2f6fe4" } }
    };
    var axis = part.axis;
    Plotly.newPlot(el, [trace], baseLayout({ yaxis: { title: { text: axis.title }, tickformat: axis.tickformat }, showlegend: false, margin: { t: 24 } }), CONFIG);
  }

  // The simulated bookings: bars of the share of runs, P10/P50/P90 and the target as lines.
  function drawHistogram(el, data) {
    var trace = {
      type: "bar",
      x: data.x,
      y: data.y,
      width: data.width,
      marker: { color: "#9bb8f5", line: { color: "#7d9fe8", width: 0.5 } },
      hovertext: data.hover,
      hoverinfo: "text"
    };
    var top = Math.max.apply(null, data.y) * 1.1;
    var shapes = data.marks.map(function (m) {
      return { type: "line", x0: m.x, x1: m.x, y0: 0, y1: top, line: { color: m.colour, width: 2, dash: m.colour === "#8a97ad" ? "dot" : "solid" } };
    });
    // P10, P50 and P90 are labelled on one row, the target on the row above (it often falls
    // near P50).
    var annotations = data.marks.map(function (m, i) {
      return { x: m.x, y: top, yshift: i < 3 ? 2 : 18, text: m.name, showarrow: false, font: { color: m.colour, size: 11 }, yanchor: "bottom" };
    });
    Plotly.newPlot(el, [trace], baseLayout({
      xaxis: { title: { text: data.xaxis.title }, tickformat: data.xaxis.tickformat, gridcolor: GRID },
      yaxis: { title: { text: data.yaxis } },
      shapes: shapes,
      annotations: annotations,
      showlegend: false,
      margin: { t: 44 }
    }), CONFIG);
  }

  // The win model's reliability curve: one line per model through its filled bins (x: mean probability given, y: share won), the
  // marker's area growing with the snapshots behind it; the diagonal is perfect calibration.
  function drawReliability(el, data) {
    var most = 1;
    data.traces.forEach(function (t) {
      t.count.forEach(function (n) { if (n > most) most = n; });
    });
    var traces = [{
      type: "scatter",
      mode: "lines",
      name: data.diagonal,
      x: [0, 1],
      y: [0, 1],
      line: { color: "#c7cfdb", dash: "dash", width: 1.5 },
      hoverinfo: "skip"
    }];
    data.traces.forEach(function (t) {
      traces.push({
        type: "scatter",
        mode: "lines+markers",
        name: t.name,
        x: t.predicted,
        y: t.observed,
        customdata: t.count.map(function (n, i) { return [n, t.bins[i]]; }),
        line: { color: t.colour, width: 2 },
        marker: {
          color: t.colour,
          size: t.count.map(function (n) { return 6 + 18 * Math.sqrt(n / most); }),
          line: { color: "#fff", width: 1 }
        },
        hovertemplate: t.name + "<br>%{customdata[1]}<br>" + data.predicted + ": %{x:.1%}<br>" +
          data.observed + ": %{y:.1%}<br>" + data.snapshots + ": %{customdata[0]}<extra></extra>"
      });
    });
    Plotly.newPlot(el, traces, baseLayout({
      height: 420,
      legend: { y: 1.1 },
      xaxis: { title: { text: data.x }, range: [0, 1], tickformat: ".0%", gridcolor: GRID, zeroline: false },
      yaxis: { title: { text: data.y }, range: [0, 1.02], tickformat: ".0%", zeroline: false }
    }), CONFIG);
  }

  var DRAW = {
    rates: drawBars,
    bars: drawBars,
    waterfall: drawWaterfall,
    histogram: drawHistogram,
    reliability: drawReliability
  };

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Plotly) return;
    document.querySelectorAll(".analytics-chart[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.dataset.source);
      var draw = DRAW[el.dataset.chart];
      if (source && draw) draw(el, JSON.parse(source.textContent));
    });
  });
})();
