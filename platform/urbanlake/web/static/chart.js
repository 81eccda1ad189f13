/* The dataset page's interactive chart. The page already shows the chart as an SVG drawn on the
   server, with its numbers in a table; this draws the same numbers (the JSON in #chart-data:
   {"x": [ISO times], "series": [{"name", "values"}], "y_label", "title"}) with uPlot (vendored
   under /static/vendor/uplot): values under the cursor in the legend, series shown or hidden by
   clicking their name, the width following the page. Colours and dashes are the SVG's, from the
   stylesheet's --series-N, so light and dark mode hold. The SVG stays for print. */
(function () {
  "use strict";
  var UPLOT = "/static/vendor/uplot/uPlot.iife.min.js";
  var UPLOT_CSS = "/static/vendor/uplot/uPlot.min.css";
  var DASHES = [[], [6, 3], [2, 3], [8, 3, 2, 3], [12, 4], [4, 2, 4, 6], [1, 4], [10, 2, 2, 2, 2, 2]];
  var HEIGHT = 320;
  var source = document.getElementById("chart-data");
  if (!source || !window.ResizeObserver) {
    return;
  }
  var spec;
  try {
    spec = JSON.parse(source.textContent);
  } catch (error) {
    return;
  }
  if (!spec || !spec.x || !spec.x.length || !spec.series || !spec.series.length) {
    return;
  }
  var scope = source.closest("section") || document;
  var drawn = scope.querySelector("svg.chart") || scope.querySelector('svg[role="img"]');
  if (!drawn) {
    return;
  }

  // The legend names the x values as the data table's first column does (the page's words).
  var header = scope.querySelector("table thead th");
  var timeLabel = header ? header.textContent.trim() : "";

  // Times as seconds since the epoch (uPlot's time scale); numbers stay numbers.
  var isTime = typeof spec.x[0] === "string";
  var xs = spec.x.map(function (x) { return isTime ? Date.parse(x) / 1000 : Number(x); });
  if (xs.some(function (x) { return !isFinite(x); })) {
    return;
  }

  function withUplot(ready) {
    if (!document.querySelector('link[href="' + UPLOT_CSS + '"]')) {
      var sheet = document.createElement("link");
      sheet.rel = "stylesheet";
      sheet.href = UPLOT_CSS;
      document.head.appendChild(sheet);
    }
    if (window.uPlot) {
      ready();
      return;
    }
    var script = document.createElement("script");
    script.src = UPLOT;
    script.onload = ready;
    document.head.appendChild(script);
  }

  function colour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function options(width) {
    var fg = colour("--fg", "#1a1a1a");
    var line = colour("--line", "#c8c8c8");
    var axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 },
                 font: "12px system-ui, sans-serif", labelFont: "12px system-ui, sans-serif" };
    return {
      width: width,
      height: HEIGHT,
      scales: { x: { time: isTime } },
      cursor: { focus: { prox: 24 } },
      focus: { alpha: 0.35 },
      legend: { live: true },
      series: [{ label: timeLabel }].concat(spec.series.map(function (series, i) {
        var stroke = colour("--series-" + (i % 8), "#0b57a4");
        return {
          label: String(series.name),
          stroke: stroke,
          width: 2,
          dash: DASHES[i % DASHES.length],
          spanGaps: false,
          points: { show: xs.length <= 60, fill: stroke }
        };
      })),
      axes: [Object.assign({}, axis), Object.assign({ label: spec.y_label || "", size: 60 }, axis)]
    };
  }

  function draw() {
    var host = document.createElement("div");
    host.className = "chart-live";
    host.setAttribute("role", "img");
    host.setAttribute("aria-label", drawn.getAttribute("aria-label") || spec.title || "");
    drawn.parentNode.insertBefore(host, drawn.nextSibling);
    var data = [xs].concat(spec.series.map(function (series) {
      return series.values.map(function (v) { return v === null ? null : Number(v); });
    }));
    var plot = null;
    function build() {
      if (plot) {
        plot.destroy();
      }
      plot = new window.uPlot(options(Math.max(host.clientWidth, 240)), data, host);
    }
    try {
      build();
    } catch (error) {
      host.parentNode.removeChild(host);  // the server's SVG stays
      return;
    }
    drawn.classList.add("js-replaced");  // hidden on screen, still printed
    var width = host.clientWidth;
    new ResizeObserver(function () {
      if (plot && host.clientWidth !== width) {
        width = host.clientWidth;
        plot.setSize({ width: Math.max(width, 240), height: HEIGHT });
      }
    }).observe(host);
    // A change between light and dark redraws with the other scheme's colours.
    if (window.matchMedia) {
      var scheme = window.matchMedia("(prefers-color-scheme: dark)");
      if (scheme.addEventListener) {
        scheme.addEventListener("change", build);
      }
    }
  }

  withUplot(draw);
})();
