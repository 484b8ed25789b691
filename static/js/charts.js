/*
 * Draws every <canvas data-chart="ID"> from the JSON spec in <script id="ID"> (written by
 * Django's json_script from orders/charts.py) with the vendored Chart.js. No other code runs
 * on these pages; without scripts the data tables next to each chart carry the same figures.
 *
 * Spec: {kind, x: "category"|"date", y: "number"|"date", labels, xTitle, yTitle, datasets:
 * [{label, data, colour, dashed, reference, points, showLine, radius}]}. Dates are ISO strings
 * ("2023-05-15"); they are placed on a linear axis in UTC milliseconds and shown back as dates.
 */
(function () {
  "use strict";

  // Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
  var PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
  var NAMED = { receipt: "#1a7f37", alert: "#a4161a", needBy: "#b35900", reference: "#6e7781" };
  var DAY_MS = 86400000;

  function colourOf(dataset, index) {
    if (typeof dataset.colour === "string") return NAMED[dataset.colour] || dataset.colour;
    if (dataset.reference) return NAMED.reference;
    var i = typeof dataset.colour === "number" ? dataset.colour : index;
    return PALETTE[i % PALETTE.length];
  }

  function toTime(iso) {
    return Date.parse(iso + "T00:00:00Z");
  }

  function isoDate(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  function monthLabel(ms) {
    return new Date(ms).toISOString().slice(0, 7);
  }

  var SHORT_RANGE_MS = 75 * DAY_MS;

  // Ticks on the first of each month (every second or third month on long ranges); on a
  // range of a few weeks, Chart.js's own ticks, shown as full dates.
  function monthTicks(axis) {
    if (axis.max - axis.min < SHORT_RANGE_MS) return;
    var start = new Date(axis.min);
    var cursor = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), 1);
    var months = Math.round((axis.max - axis.min) / (30 * DAY_MS));
    var step = months > 24 ? 3 : months > 12 ? 2 : 1;
    var ticks = [];
    while (cursor <= axis.max) {
      if (cursor >= axis.min) ticks.push({ value: cursor });
      var d = new Date(cursor);
      cursor = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + step, 1);
    }
    if (ticks.length) axis.ticks = ticks;
  }

  function dateAxis(title) {
    return {
      type: "linear",
      grace: "4%",
      title: { display: !!title, text: title },
      afterBuildTicks: monthTicks,
      ticks: {
        callback: function (value) {
          return this.max - this.min < SHORT_RANGE_MS ? isoDate(value) : monthLabel(value);
        },
        autoSkip: true,
        maxRotation: 0,
      },
    };
  }

  function numberAxis(title) {
    return { type: "linear", title: { display: !!title, text: title }, beginAtZero: true };
  }

  function point(value, spec) {
    if (value === null || typeof value !== "object") return value;
    return {
      x: spec.x === "date" ? toTime(value.x) : value.x,
      y: spec.y === "date" ? toTime(value.y) : value.y,
      note: value.note,
    };
  }

  function dataset(raw, index, spec) {
    var colour = colourOf(raw, index);
    var out = {
      label: raw.label,
      data: raw.data.map(function (v) { return point(v, spec); }),
      borderColor: colour,
      // Dashed and reference lines show in the legend as an outlined box, solid ones filled.
      backgroundColor: raw.dashed || raw.reference ? "rgba(255, 255, 255, 0)" : colour,
      pointBackgroundColor: colour,
      borderWidth: raw.reference && !raw.colour ? 1.5 : 2,
      pointRadius: raw.reference ? 0 : raw.radius || 4,
      pointHoverRadius: raw.reference ? 0 : (raw.radius || 4) + 2,
      pointStyle: raw.points || "circle",
      showLine: raw.showLine !== false,
      spanGaps: true,
      tension: 0,
    };
    if (raw.dashed) out.borderDash = [6, 4];
    if (raw.reference) out.borderDash = raw.colour ? [8, 4] : [2, 3];
    return out;
  }

  function formatValue(value, kind) {
    if (value === null || value === undefined) return "";
    return kind === "date" ? isoDate(value) : Number(value).toLocaleString("en-US");
  }

  function config(spec) {
    var datasets = spec.datasets.map(function (raw, i) { return dataset(raw, i, spec); });
    var scales = {
      x: spec.x === "date" ? dateAxis(spec.xTitle) : { type: "category", title: { display: !!spec.xTitle, text: spec.xTitle } },
      y: spec.y === "date" ? dateAxis(spec.yTitle) : numberAxis(spec.yTitle),
    };
    var options = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: false },
      scales: scales,
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 28, boxHeight: 10 } },
        tooltip: {
          callbacks: {
            title: function (items) {
              if (!items.length) return "";
              return spec.x === "date" ? isoDate(items[0].raw.x) : items[0].label;
            },
            label: function (item) {
              var raw = item.raw;
              var y = raw !== null && typeof raw === "object" ? raw.y : raw;
              var text = item.dataset.label + ": " + formatValue(y, spec.y === "date" ? "date" : "number");
              return raw && raw.note ? text + " (" + raw.note + ")" : text;
            },
          },
        },
      },
    };
    // Points on date axes already carry numeric x and y.
    if (spec.x !== "category") options.parsing = false;
    return {
      type: "line",
      data: { labels: spec.labels || [], datasets: datasets },
      options: options,
      plugins: [{
        id: "markDrawn",
        afterRender: function (chart) { chart.canvas.setAttribute("data-drawn", "true"); },
      }],
    };
  }

  function drawAll() {
    if (typeof window.Chart === "undefined") return; // the tables still carry the figures
    var canvases = document.querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) return;
      try {
        new window.Chart(canvas, config(JSON.parse(source.textContent)));
      } catch (error) {
        canvas.setAttribute("data-error", String(error));
        if (window.console) window.console.error("chart " + canvas.id + ": " + error);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
