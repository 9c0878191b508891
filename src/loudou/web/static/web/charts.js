/* loudou charts: the funnel page's plotly funnel. The figures come from a json_script element
   rendered by the server (labels already in the user's language); a click on a stage loads its
   deals with htmx into the element named by the chart's data-target. */
(function () {
  "use strict";

  function drawFunnel(el, data) {
    var n = data.counts.length;
    var colours = [];
    for (var i = 0; i < n; i++) {
      // Target accounts in slate, the stages from light to deep blue down the funnel.
      colours.push(i === 0 ? "#8a97ad" : "hsl(221, 78%, " + (70 - (i - 1) * (35 / Math.max(n - 2, 1))) + "%)");
    }
    var trace = {
      type: "funnel",
      orientation: "h",
      y: data.labels,
      x: data.counts,
      text: data.text,
      textinfo: "text",
      textposition: "auto",
      insidetextfont: { color: "#fff" },
      outsidetextfont: { color: "#1d2433" },
      hovertext: data.hover,
      hoverinfo: "text",
      marker: { color: colours },
      connector: { line: { color: "#dde2ea", width: 1 }, fillcolor: "#eef1f6" }
    };
    var layout = {
      margin: { l: 150, r: 20, t: 10, b: 10 },
      height: Math.max(260, 52 * n),
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: getComputedStyle(document.documentElement).fontFamily, size: 13, color: "#1d2433" },
      yaxis: { automargin: true },
      dragmode: false,
      hoverlabel: { bgcolor: "#18233a", font: { color: "#fff" } }
    };
    Plotly.newPlot(el, [trace], layout, { displayModeBar: false, responsive: true });
    el.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (!point) return;
      var url = data.urls[point.pointNumber];
      var target = el.dataset.target;
      if (url && target && window.htmx) {
        htmx.ajax("GET", url, { target: target, swap: "innerHTML" }).then(function () {
          var box = document.querySelector(target);
          if (box) box.scrollIntoView({ behavior: "smooth", block: "start" });
        });
      }
    });
    // A pointer cursor over the stages that list deals.
    el.querySelectorAll(".funnel .point, .funnellayer .point").forEach(function (bar, i) {
      if (data.urls[i]) bar.style.cursor = "pointer";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("funnel-chart");
    var source = document.getElementById("funnel-data");
    if (!el || !source || !window.Plotly) return;
    drawFunnel(el, JSON.parse(source.textContent));
  });
})();
