/*
 * History at a glance on the Peer Network page: the Sync Status tab's two charts (full syncs and the
 * pool's size over the last day, drawn with the vendored uPlot) and its table of the last runs, and
 * the Peers tab's per-peer exchange history. peer_network.js fetches the data and calls these.
 *
 * After each draw a chart's <figure> carries `data-points`: the data points drawn within the day
 * (per series too: `data-points-success`, `data-points-local`, ...).
 */
(function () {
  "use strict";

  const DAY_SECONDS = 86400;
  const RUNS_SHOWN = 20;
  const CHART_HEIGHT = 220;
  // Full-sync outcomes, coloured as the page's badges are (ok, warning, error).
  const OUTCOMES = [
    { key: "success", label: "Succeeded", colour: "#2e7d32" },
    { key: "retrying", label: "Retrying", colour: "#e65100" },
    { key: "failed", label: "Failed", colour: "#c62828" },
  ];
  const POOL_SERIES = [
    { key: "local", label: "Local", colour: "#1565c0" },
    { key: "remote", label: "Remote", colour: "#8e24aa" },
  ];
  const EXCHANGE_KIND = { ok: "ok", unreachable: "warning" };

  window.PeerNetworkHistory = function (helpers) {
    const { el, badge, timeNode, formatNumber } = helpers;
    const plots = new Map(); // figure id -> uPlot

    function epochSeconds(value) {
      const ms = Date.parse(value);
      return Number.isNaN(ms) ? null : ms / 1000;
    }

    function lastDay() {
      const now = Date.now() / 1000;
      return [now - DAY_SECONDS, now];
    }

    function formatSeconds(value) {
      if (typeof value !== "number") {
        return "–";
      }
      return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(value < 10 ? 2 : 1)} s`;
    }

    function formatBytes(value) {
      if (typeof value !== "number") {
        return "–";
      }
      if (value < 1024) {
        return `${value} B`;
      }
      return value < 1024 * 1024 ? `${(value / 1024).toFixed(1)} kB` : `${(value / 1048576).toFixed(1)} MB`;
    }

    // What uPlot drew: the x positions within the scale where a shown series has a value.
    function markDrawn(figure, keys, u) {
      const xs = u.data[0];
      const { min, max } = u.scales.x;
      const perSeries = keys.map(() => 0);
      let drawn = 0;
      for (let i = 0; i < xs.length; i++) {
        if (xs[i] < min || xs[i] > max) {
          continue;
        }
        let any = false;
        for (let s = 1; s < u.data.length; s++) {
          if (u.series[s].show && u.data[s][i] !== null && u.data[s][i] !== undefined) {
            perSeries[s - 1] += 1;
            any = true;
          }
        }
        drawn += any ? 1 : 0;
      }
      keys.forEach((key, index) => figure.setAttribute(`data-points-${key}`, String(perSeries[index])));
      figure.dataset.points = String(drawn);
    }

    // Draw into the figure, or give the chart it has new data (its x scale moves to the day ending now).
    function draw(figure, keys, options, data) {
      const target = figure.querySelector(".pn-chart-plot");
      const width = Math.max(320, Math.floor(target.getBoundingClientRect().width));
      let plot = plots.get(figure.id);
      if (!plot) {
        const hooks = { draw: [(u) => markDrawn(figure, keys, u)] };
        plot = new window.uPlot({ ...options, width, height: CHART_HEIGHT, hooks }, data, target);
        plots.set(figure.id, plot);
        return;
      }
      if (Math.abs(plot.width - width) > 1) {
        plot.setSize({ width, height: CHART_HEIGHT });
      }
      plot.setData(data);
    }

    function timeAxis() {
      return { x: { time: true, range: () => lastDay() } };
    }

    // Axes in the admin's colours, so the charts read in its light and dark themes alike.
    function axes(yLabel) {
      const style = getComputedStyle(document.documentElement);
      const colour = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
      const axis = {
        stroke: colour("--body-quiet-color", "#666"),
        grid: { stroke: colour("--hairline-color", "#e8e8e8"), width: 1 },
        ticks: { stroke: colour("--hairline-color", "#e8e8e8"), width: 1 },
      };
      return [axis, { ...axis, label: yLabel, size: 56 }];
    }

    // Full syncs: one point per run, at its start, as high as it took, coloured by its outcome.
    function renderRunsChart(figure, runs) {
      const timed = runs
        .map((run) => ({ run, at: epochSeconds(run.startedAt) }))
        .filter((item) => item.at !== null)
        .sort((a, b) => a.at - b.at);
      const data = [
        timed.map((item) => item.at),
        ...OUTCOMES.map((outcome) =>
          timed.map((item) => (item.run.outcome === outcome.key ? Math.max(0, item.run.durationSeconds) : null))
        ),
      ];
      const options = {
        scales: { ...timeAxis(), y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
        axes: axes("duration (s)"),
        series: [
          { label: "Started" },
          ...OUTCOMES.map((outcome) => ({
            label: outcome.label,
            stroke: outcome.colour,
            paths: () => null,
            points: { show: true, size: 9, width: 1, stroke: outcome.colour, fill: outcome.colour },
            value: (u, value) => formatSeconds(value),
          })),
        ],
      };
      draw(figure, OUTCOMES.map((outcome) => outcome.key), options, data);
      const day = lastDay();
      const inDay = timed.filter((item) => item.at >= day[0]);
      const counts = OUTCOMES.map((outcome) => [outcome, inDay.filter((item) => item.run.outcome === outcome.key).length]);
      const parts = counts.filter(([, count]) => count > 0).map(([outcome, count]) => `${count} ${outcome.label.toLowerCase()}`);
      figure.querySelector(".pn-chart-summary").textContent = inDay.length
        ? `${inDay.length} full sync${inDay.length === 1 ? "" : "s"} in the last day: ${parts.join(", ")}.`
        : "No full sync in the last day.";
    }

    // The pool's size: local and remote advertisements, sampled once a minute.
    function renderPoolChart(figure, samples) {
      const timed = samples
        .map((sample) => ({ sample, at: epochSeconds(sample.sampledAt) }))
        .filter((item) => item.at !== null)
        .sort((a, b) => a.at - b.at);
      const data = [timed.map((item) => item.at), ...POOL_SERIES.map((series) => timed.map((item) => item.sample[series.key]))];
      const options = {
        scales: { ...timeAxis(), y: { range: (u, min, max) => [0, max > 0 ? Math.ceil(max * 1.15) : 1] } },
        axes: axes("advertisements"),
        series: [
          { label: "Sampled" },
          ...POOL_SERIES.map((series) => ({
            label: series.label,
            stroke: series.colour,
            width: 2,
            points: { show: timed.length < 120, size: 5, fill: series.colour },
            value: (u, value) => formatNumber(value),
          })),
        ],
      };
      draw(figure, POOL_SERIES.map((series) => series.key), options, data);
      const latest = timed.length ? timed[timed.length - 1].sample : null;
      figure.querySelector(".pn-chart-summary").textContent = latest
        ? `${timed.length} sample${timed.length === 1 ? "" : "s"} in the last day; latest: ` +
          `${formatNumber(latest.local)} local, ${formatNumber(latest.remote)} remote.`
        : "No sample in the last day yet (the beat samples the pool once a minute).";
    }

    function countCell(value, label) {
      return el("td", { className: "pn-num", "data-label": label }, value === null || value === undefined ? "–" : formatNumber(value));
    }

    const RUN_BADGES = { success: "ok", retrying: "warning", failed: "error" };

    function runRow(run) {
      return el(
        "tr",
        { "data-run-id": run.id, "data-outcome": run.outcome },
        el("th", { scope: "row", "data-label": "Started" }, timeNode(run.startedAt)),
        el("td", { "data-label": "Reason", text: run.reason }),
        el("td", { "data-label": "Outcome" }, badge(RUN_BADGES[run.outcome] || "quiet", run.outcome)),
        el("td", { className: "pn-num", "data-label": "Duration", text: formatSeconds(run.durationSeconds) }),
        countCell(run.registersPushed, "Registers"),
        countCell(run.added, "Added"),
        countCell(run.updated, "Updated"),
        countCell(run.removed, "Removed"),
        countCell(run.unchanged, "Unchanged"),
        countCell(run.held, "Held"),
        el(
          "td",
          { "data-label": "Error" },
          run.error ? el("span", { className: "pn-error-text", text: run.error, title: run.error }) : ""
        )
      );
    }

    // The newest runs first; the API lists them oldest first.
    function renderRunsTable(table, caption, runs) {
      const newest = runs.slice(-RUNS_SHOWN).reverse();
      table.tBodies[0].replaceChildren(...newest.map(runRow));
      caption.textContent =
        runs.length > newest.length ? `The last ${newest.length} of ${runs.length} full syncs kept` : "Full syncs kept";
    }

    function describeExchange(exchange) {
      const moment = new Date(exchange.at);
      const parts = [
        Number.isNaN(moment.getTime()) ? exchange.at : moment.toLocaleString(),
        exchange.direction === "inbound" ? "inbound" : "outbound",
        exchange.outcome,
        formatSeconds(exchange.durationSeconds),
      ];
      if (exchange.advertisements !== null && exchange.advertisements !== undefined) {
        parts.push(`${formatNumber(exchange.advertisements)} ads${exchange.digestOnly ? " (digest)" : ""}`);
      }
      if (exchange.error) {
        parts.push(exchange.error);
      }
      return parts.join(" · ");
    }

    function exchangeRow(exchange) {
      return el(
        "tr",
        { "data-outcome": exchange.outcome },
        el("td", {}, timeNode(exchange.at)),
        el("td", { text: exchange.direction === "inbound" ? "in" : "out", title: exchange.direction }),
        el("td", {}, badge(EXCHANGE_KIND[exchange.outcome] || "error", exchange.outcome.replace(/_/g, " "))),
        el("td", { className: "pn-num", text: formatSeconds(exchange.durationSeconds) }),
        el("td", { className: "pn-num", text: formatBytes(exchange.bytesSent) }),
        el("td", { className: "pn-num", text: formatBytes(exchange.bytesReceived) }),
        el(
          "td",
          { className: "pn-num" },
          exchange.advertisements === null || exchange.advertisements === undefined
            ? "–"
            : `${formatNumber(exchange.advertisements)}${exchange.digestOnly ? " (digest)" : ""}`
        ),
        el("td", {}, exchange.error ? el("span", { className: "pn-error-text", text: exchange.error }) : "")
      );
    }

    // A strip of the peer's last exchanges (oldest to newest) on a button that shows them in a row below.
    function exchangesCell(peer, openPeers) {
      const exchanges = Array.isArray(peer.recentExchanges) ? peer.recentExchanges : [];
      const cell = el("td", { "data-label": "Recent exchanges", className: "pn-exchanges-cell" });
      if (exchanges.length === 0) {
        cell.append(el("span", { className: "pn-quiet", text: "none yet" }));
        return cell;
      }
      const ok = exchanges.filter((exchange) => exchange.outcome === "ok").length;
      const strip = el(
        "span",
        { className: "pn-exchange-strip", "aria-hidden": "true" },
        exchanges.map((exchange) =>
          el("span", {
            className: `pn-exchange-mark pn-exchange-${EXCHANGE_KIND[exchange.outcome] || "error"}`,
            title: describeExchange(exchange),
          })
        )
      );
      const rowId = `pn-exchanges-${peer.id}`;
      const toggle = el(
        "button",
        {
          type: "button",
          className: "pn-exchanges-toggle",
          "aria-expanded": openPeers.has(peer.id) ? "true" : "false",
          "aria-controls": rowId,
          "data-focus-key": `exchanges-${peer.id}`,
          title: "Show or hide the last exchanges with this peer",
        },
        strip,
        el("span", { className: "pn-exchange-count", text: `${ok}/${exchanges.length} ok` })
      );
      toggle.addEventListener("click", () => {
        const open = !openPeers.has(peer.id);
        if (open) {
          openPeers.add(peer.id);
        } else {
          openPeers.delete(peer.id);
        }
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
        document.getElementById(rowId).hidden = !open;
      });
      cell.append(toggle);
      return cell;
    }

    // The peer's last exchanges, newest first, in a row across the whole table (hidden until asked for).
    function exchangesRow(peer, columns, openPeers) {
      const exchanges = Array.isArray(peer.recentExchanges) ? peer.recentExchanges : [];
      if (exchanges.length === 0) {
        return null;
      }
      const table = el(
        "table",
        { className: "pn-exchanges-table" },
        el("caption", { className: "visually-hidden", text: `Last exchanges with ${peer.name || peer.url || "this peer"}` }),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["Time", "Way", "Outcome", "Took", "Sent", "Received", "Advertisements", "Error"].map((label, index) =>
              el("th", { scope: "col", className: index >= 3 && index <= 6 ? "pn-num" : null, text: label })
            )
          )
        ),
        el("tbody", {}, exchanges.slice().reverse().map(exchangeRow))
      );
      const row = el(
        "tr",
        { id: `pn-exchanges-${peer.id}`, className: "pn-exchanges-row", "data-exchanges-of": peer.id },
        el("td", { colspan: columns }, table)
      );
      row.hidden = !openPeers.has(peer.id);
      return row;
    }

    function resize() {
      for (const [id, plot] of plots) {
        const target = document.getElementById(id).querySelector(".pn-chart-plot");
        const width = Math.floor(target.getBoundingClientRect().width);
        if (width > 0 && Math.abs(plot.width - width) > 1) {
          plot.setSize({ width: Math.max(320, width), height: CHART_HEIGHT });
        }
      }
    }
    window.addEventListener("resize", resize);

    return { renderRunsChart, renderPoolChart, renderRunsTable, exchangesCell, exchangesRow };
  };
})();
