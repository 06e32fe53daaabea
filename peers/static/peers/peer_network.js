/*
 * The admin's Peer Network page: tabs, and data fetched from the node's JSON APIs with the
 * admin's session, refreshed every few seconds without reloading the page.
 *
 * Everything a remote peer sends (names, descriptions, URLs) is untrusted: the page builds
 * its DOM with textContent and attributes, never with innerHTML.
 */
(function () {
  "use strict";

  const root = document.getElementById("peer-network");
  if (!root) {
    return;
  }

  const PEER_SERVICE = "Peer Service";
  const REGISTER_SERVICE = "Register Service";
  const refreshMs = Math.max(500, parseInt(root.dataset.refreshMs, 10) || 5000);
  const serves = {
    [PEER_SERVICE]: root.dataset.servesPeers === "true",
    [REGISTER_SERVICE]: root.dataset.servesRegisters === "true",
  };
  const csrfToken = (root.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

  // One entry per JSON endpoint the page reads.
  const sources = {
    available: { service: PEER_SERVICE, url: root.dataset.urlAvailable },
    storeStatus: { service: PEER_SERVICE, url: root.dataset.urlStoreStatus },
    peers: { service: PEER_SERVICE, url: root.dataset.urlPeers },
    syncState: { service: REGISTER_SERVICE, url: root.dataset.urlSyncState },
    // Read only while the Sync Status tab is shown: its charts are their only readers.
    syncHistory: { service: REGISTER_SERVICE, url: root.dataset.urlSyncHistory, tab: "sync" },
    poolHistory: { service: PEER_SERVICE, url: root.dataset.urlPoolHistory, tab: "sync" },
  };
  for (const source of Object.values(sources)) {
    source.result = null; // the latest answer: {state: "ok"|"missing"|"unreachable"|"error"|"auth", ...}
    source.data = undefined; // the last good data, kept while the service is unreachable
    source.okAt = null;
  }

  // Exposed for the browser tests (and curious operators): counts refreshes, survives only without reloads.
  const status = { refreshes: 0, lastRefreshAt: null };
  window.peerNetwork = status;

  // After "Resync now": when the server queued it, the attempt shown before, and whether to report.
  const resync = { requestedAt: null, previousAttempt: null, waiting: false };
  // The worker that stamps attempts may run on another host: tolerate this much clock difference.
  const CLOCK_SKEW_MS = 5000;

  // ------------------------------------------------------------------ small DOM helpers
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) {
        continue;
      }
      if (name === "className") {
        node.className = value;
      } else if (name === "text") {
        node.textContent = value;
      } else if (name.startsWith("on")) {
        node.addEventListener(name.slice(2), value);
      } else {
        node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function parseMoment(value) {
    if (!value) {
      return null;
    }
    const moment = new Date(value);
    return Number.isNaN(moment.getTime()) ? null : moment;
  }

  function relative(moment) {
    const seconds = Math.round((moment.getTime() - Date.now()) / 1000);
    const size = Math.abs(seconds);
    let text;
    if (size < 5) {
      return "just now";
    } else if (size < 90) {
      text = `${size} s`;
    } else if (size < 90 * 60) {
      text = `${Math.round(size / 60)} min`;
    } else if (size < 36 * 3600) {
      text = `${Math.round(size / 3600)} h`;
    } else {
      text = `${Math.round(size / 86400)} d`;
    }
    return seconds < 0 ? `${text} ago` : `in ${text}`;
  }

  // A <time> that reads "12 s ago" and shows the exact moment on hover.
  function timeNode(value, emptyText) {
    const moment = parseMoment(value);
    if (!moment) {
      return el("span", { className: "pn-quiet", text: emptyText || "never" });
    }
    return el("time", { datetime: moment.toISOString(), title: moment.toLocaleString(), text: relative(moment) });
  }

  function badge(kind, text, title) {
    return el("span", { className: `pn-badge pn-badge-${kind}`, text, title });
  }

  function formatNumber(value) {
    return typeof value === "number" ? value.toLocaleString() : "–";
  }

  function plural(value, noun) {
    return `${formatNumber(value)} ${noun}${value === 1 ? "" : "s"}`;
  }

  function shortId(id) {
    return id && id.length > 12 ? `${id.slice(0, 8)}…` : id || "";
  }

  // Rebuilding a table must not throw the keyboard user's focus back to the top of the page.
  function keepingFocus(render) {
    const active = document.activeElement;
    const key = active && active.dataset ? active.dataset.focusKey : undefined;
    render();
    if (key) {
      const again = root.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
      if (again) {
        again.focus();
      }
    }
  }

  // ------------------------------------------------------------------ fetching
  async function detailOf(response) {
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string") {
        return body.detail;
      }
    } catch (error) {
      // not JSON: the status line is all we have
    }
    return `HTTP ${response.status}`;
  }

  async function request(url, options) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(10000, refreshMs * 2));
    let response;
    try {
      response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        signal: controller.signal,
        ...options,
        headers: { Accept: "application/json", ...((options && options.headers) || {}) },
      });
    } catch (error) {
      return { state: "unreachable", detail: error.name === "AbortError" ? "timed out" : "no answer" };
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 404) {
      return { state: "missing", status: 404 };
    }
    if (response.status === 401 || response.status === 403) {
      return { state: "auth", status: response.status, detail: await detailOf(response) };
    }
    if (!response.ok) {
      const state = response.status >= 500 ? "unreachable" : "error";
      return { state, status: response.status, detail: await detailOf(response) };
    }
    try {
      return { state: "ok", status: response.status, data: await response.json() };
    } catch (error) {
      return { state: "error", status: response.status, detail: "the answer was not JSON" };
    }
  }

  function tabShown(tabId) {
    return !document.getElementById(`pn-panel-${tabId}`).hidden;
  }

  async function refresh() {
    const names = Object.keys(sources).filter((name) => !sources[name].tab || tabShown(sources[name].tab));
    const results = await Promise.all(names.map((name) => request(sources[name].url)));
    names.forEach((name, index) => {
      const source = sources[name];
      source.result = results[index];
      if (source.result.state === "ok") {
        source.data = source.result.data;
        source.okAt = new Date();
      } else if (source.result.state === "missing") {
        source.data = undefined;
      }
    });
    status.refreshes += 1;
    status.lastRefreshAt = new Date();
    root.dataset.refreshes = String(status.refreshes);
    render();
  }

  let timer = null;
  let running = null;
  let again = false;

  // Refresh now, then every refreshMs; never two refreshes at once (asks made meanwhile share one).
  function refreshSoon() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (running) {
      again = true;
      return;
    }
    running = refresh()
      .catch((error) => console.error("peer network refresh failed", error))
      .finally(() => {
        running = null;
        if (again) {
          again = false;
          refreshSoon();
        } else if (!document.hidden) {
          timer = setTimeout(refreshSoon, refreshMs);
        }
      });
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !timer && !running) {
      refreshSoon();
    }
  });

  // ------------------------------------------------------------------ state messages
  function notServedText(source) {
    return `The ${source.service} is not served by this node process.`;
  }

  // A source without usable data: the message to show in its place, or null if there is data to show.
  function unavailableText(source, missingText) {
    const result = source.result;
    if (!result) {
      return "Loading…";
    }
    if (result.state === "missing") {
      return serves[source.service] ? missingText : notServedText(source);
    }
    if (source.data === undefined) {
      if (result.state === "auth") {
        return "Your session has ended: log in again to see this data.";
      }
      return `The ${source.service} is unreachable (${result.detail || "no answer"}); retrying every ${refreshMs / 1000} s.`;
    }
    return null;
  }

  function renderStaleBanner() {
    const banner = document.getElementById("pn-stale");
    const stale = new Map();
    let sessionEnded = false;
    for (const source of Object.values(sources)) {
      const result = source.result;
      if (!result || result.state === "ok" || result.state === "missing") {
        continue;
      }
      if (result.state === "auth") {
        sessionEnded = true;
        continue;
      }
      if (!stale.has(source.service) || !stale.get(source.service).okAt) {
        stale.set(source.service, { detail: result.detail, okAt: source.okAt });
      }
    }
    banner.replaceChildren();
    if (sessionEnded) {
      banner.append(
        el("strong", { text: "Your session has ended." }),
        " ",
        el("a", { href: root.dataset.loginUrl, text: "Log in again" }),
        " to keep this page up to date."
      );
    }
    for (const [service, info] of stale) {
      const since = info.okAt ? ` Last good data: ${info.okAt.toLocaleTimeString()}.` : "";
      banner.append(
        el(
          "p",
          {},
          el("strong", { text: `Data is stale — ${service} unreachable` }),
          ` (${info.detail || "no answer"}). Retrying every ${refreshMs / 1000} s.${since}`
        )
      );
    }
    show(banner, sessionEnded || stale.size > 0);
  }

  function renderUpdated() {
    const line = document.getElementById("pn-updated");
    const at = status.lastRefreshAt;
    line.textContent = at
      ? `Checked ${at.toLocaleTimeString()} · refreshes every ${refreshMs / 1000} s`
      : "Loading…";
  }

  // A count or a mark next to a tab's label; `spoken` replaces a mark for screen readers.
  function setBadge(tabId, text, kind, spoken) {
    const node = root.querySelector(`[data-badge-for="${tabId}"]`);
    if (spoken) {
      node.replaceChildren(
        el("span", { "aria-hidden": "true", text }),
        el("span", { className: "visually-hidden", text: spoken })
      );
    } else {
      node.textContent = text || "";
    }
    node.className = `pn-tab-badge${kind ? ` pn-tab-badge-${kind}` : ""}`;
    show(node, Boolean(text));
  }

  // ------------------------------------------------------------------ Available Registers
  const search = document.getElementById("pn-search");
  const sourceFilter = document.getElementById("pn-source");
  const unverifiedOnly = document.getElementById("pn-unverified");
  const relayedOnly = document.getElementById("pn-relayed");
  for (const control of [search, sourceFilter, unverifiedOnly, relayedOnly]) {
    control.addEventListener("input", renderAvailable);
    control.addEventListener("change", renderAvailable);
  }

  function matchesFilters(register) {
    const words = search.value.trim().toLowerCase();
    if (words) {
      const haystack = `${register.name || ""} ${register.registerId}`.toLowerCase();
      if (!words.split(/\s+/).every((word) => haystack.includes(word))) {
        return false;
      }
    }
    if (sourceFilter.value === "local" && !register.isLocal) {
      return false;
    }
    if (sourceFilter.value === "remote" && register.isLocal) {
      return false;
    }
    // Known only through relays: held by peers, none of which this node exchanges with itself.
    if (relayedOnly.checked && (register.isLocal || register.directPeerCount !== 0)) {
      return false;
    }
    return !(unverifiedOnly.checked && register.verified);
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const scratch = el("textarea", { readonly: true, className: "visually-hidden" }, text);
    document.body.append(scratch);
    scratch.select();
    document.execCommand("copy");
    scratch.remove();
  }

  function copyButton(registerId) {
    const button = el("button", {
      type: "button",
      className: "pn-copy",
      "aria-label": `Copy register id ${registerId}`,
      title: "Copy the full register id",
      "data-focus-key": `copy-${registerId}`,
      text: "Copy",
    });
    button.addEventListener("click", async () => {
      try {
        await copyText(registerId);
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Copy failed";
      }
      setTimeout(() => {
        button.textContent = "Copy";
      }, 1500);
    });
    return button;
  }

  function availableRow(register) {
    const description = register.description
      ? el("span", { className: "pn-description", text: register.description, title: register.description })
      : null;
    return el(
      "tr",
      { "data-register-id": register.registerId, className: register.verified ? "" : "pn-unverified-row" },
      el(
        "th",
        { scope: "row", "data-label": "Register" },
        el("span", { className: "pn-name", text: register.name || "(unnamed)" }),
        description
      ),
      el(
        "td",
        { "data-label": "ID", className: "pn-id-cell" },
        el("code", { className: "pn-id", title: register.registerId, text: shortId(register.registerId) }),
        " ",
        copyButton(register.registerId)
      ),
      el(
        "td",
        { "data-label": "Source" },
        register.isLocal ? badge("local", "Local", "Hosted by this node") : badge("remote", "Remote", "Learnt from peers")
      ),
      el("td", { className: "pn-num", "data-label": "Peers" }, formatNumber(register.peerCount)),
      el("td", { className: "pn-num", "data-label": "Direct peers" }, formatNumber(register.directPeerCount)),
      el("td", { className: "pn-num", "data-label": "Full replicas" }, formatNumber(register.fullReplicaPeerCount)),
      el(
        "td",
        { "data-label": "Version · docket", className: "pn-versions" },
        `${formatNumber(register.latestVersion)} · ${formatNumber(register.latestDocketVersion)}`
      ),
      el(
        "td",
        { "data-label": "Verified" },
        register.verified
          ? badge("ok", "Verified", "Refreshed by its source since this node started")
          : badge("warning", "Unverified", "Loaded from the store; not yet refreshed by its source")
      ),
      el("td", { "data-label": "Last seen" }, timeNode(register.lastSeen))
    );
  }

  function renderAvailable() {
    const source = sources.available;
    const table = document.getElementById("pn-available-table");
    const module = document.getElementById("pn-available-module");
    const message = document.getElementById("pn-available-message");
    const shown = document.getElementById("pn-available-shown");
    const registers = Array.isArray(source.data) ? source.data : [];

    const counts = {
      total: registers.length,
      local: registers.filter((r) => r.isLocal).length,
      remote: registers.filter((r) => !r.isLocal).length,
      unverified: registers.filter((r) => !r.verified).length,
    };
    const haveData = Array.isArray(source.data);
    for (const [name, value] of Object.entries(counts)) {
      root.querySelector(`[data-count="${name}"]`).textContent = haveData ? value.toLocaleString() : "–";
    }
    setBadge("available", haveData ? String(counts.total) : "");

    const problem = unavailableText(source, "The available registers endpoint is not served here.");
    if (problem || registers.length === 0) {
      message.replaceChildren(
        problem ? el("p", { text: problem }) : document.getElementById("pn-available-empty").content.cloneNode(true)
      );
      table.tBodies[0].replaceChildren();
      show(message, true);
      show(module, false);
      shown.textContent = "";
      return;
    }
    const visible = registers.filter(matchesFilters);
    keepingFocus(() => {
      const body = table.tBodies[0];
      if (visible.length === 0) {
        body.replaceChildren(
          el(
            "tr",
            {},
            el("td", {
              colspan: table.tHead.rows[0].cells.length,
              className: "pn-no-match",
              text: "No register matches the search and filters.",
            })
          )
        );
      } else {
        body.replaceChildren(...visible.map(availableRow));
      }
    });
    shown.textContent =
      visible.length === registers.length ? "" : `Showing ${visible.length} of ${registers.length}`;
    show(message, false);
    show(module, true);
  }

  function renderDegradedNote() {
    const note = document.getElementById("pn-available-degraded");
    const store = sources.storeStatus.data;
    if (store && store.store === "degraded") {
      const since = parseMoment(store.degradedSince);
      note.replaceChildren(
        el("strong", { text: "Redis is unreachable" }),
        since ? ` since ${since.toLocaleTimeString()}` : "",
        ": this list is served from the Peer Service's memory; changes are journalled and written back when Redis returns."
      );
      show(note, true);
    } else {
      show(note, false);
    }
  }

  // The history views (history.js): charts, the runs table, each peer's exchanges.
  const historyViews = window.PeerNetworkHistory
    ? window.PeerNetworkHistory({ el, badge, timeNode, formatNumber })
    : null;
  // Peers whose exchange history the operator opened: kept open across refreshes.
  const openExchanges = new Set();

  // ------------------------------------------------------------------ Peers
  const PEER_STATUS = {
    healthy: ["ok", "Healthy"],
    backing_off: ["warning", "Backing off"],
    banned: ["error", "Banned"],
    never: ["quiet", "Not contacted yet"],
  };

  function peerRow(peer) {
    const [kind, label] = PEER_STATUS[peer.status] || ["quiet", peer.status || "unknown"];
    const name = peer.name || peer.url || "(unnamed)";
    const action = peer.banned ? "unban" : "ban";
    const button = el("button", {
      type: "button",
      className: peer.banned ? "button pn-button-quiet" : "button pn-button-danger",
      "data-focus-key": `${action}-${peer.id}`,
      "aria-label": `${peer.banned ? "Unban" : "Ban"} peer ${name}`,
      text: peer.banned ? "Unban" : "Ban",
    });
    button.addEventListener("click", () => banOrUnban(peer, action));
    const exchange = el("td", { "data-label": "Last exchange" }, timeNode(peer.lastExchangeAt));
    if (peer.lastExchangeAt && peer.lastExchangeResult) {
      exchange.append(" ", el("span", { className: "pn-quiet", text: `(${peer.lastExchangeResult})` }));
    }
    if (peer.lastError) {
      exchange.append(el("span", { className: "pn-error-text", text: peer.lastError, title: peer.lastError }));
    }
    return el(
      "tr",
      { "data-peer-id": peer.peerId || "", "data-peer-pk": peer.id },
      el(
        "th",
        { scope: "row", "data-label": "Peer" },
        el("span", { className: "pn-name", text: name }),
        peer.peerId ? el("code", { className: "pn-id", title: peer.peerId, text: shortId(peer.peerId) }) : null,
        peer.isSeed ? badge("quiet", "Seed", "Listed in PEER_SEEDS") : null
      ),
      el("td", { "data-label": "URL" }, el("span", { className: "pn-url", text: peer.url })),
      el("td", { "data-label": "Status" }, badge(kind, label)),
      exchange,
      el("td", { className: "pn-num", "data-label": "Failures" }, formatNumber(peer.consecutiveFailures)),
      el("td", { className: "pn-num", "data-label": "Advertisements received" }, formatNumber(peer.advertisementsReceived)),
      historyViews ? historyViews.exchangesCell(peer, openExchanges) : el("td", { "data-label": "Recent exchanges" }),
      el("td", { "data-label": "Actions", className: "pn-actions" }, button)
    );
  }

  function renderPeers() {
    const source = sources.peers;
    const module = document.getElementById("pn-peers-module");
    const message = document.getElementById("pn-peers-message");
    const peers = Array.isArray(source.data) ? source.data : [];
    setBadge("peers", Array.isArray(source.data) ? String(peers.length) : "");

    const problem = unavailableText(source, "Peer gossip is not available on this node yet.");
    const body = document.getElementById("pn-peers-table").tBodies[0];
    if (problem) {
      message.replaceChildren(el("p", { text: problem }));
      body.replaceChildren();
    } else if (peers.length === 0) {
      message.replaceChildren(document.getElementById("pn-peers-empty").content.cloneNode(true));
      body.replaceChildren();
    } else {
      const columns = document.getElementById("pn-peers-table").tHead.rows[0].cells.length;
      const rows = peers.flatMap((peer) => [
        peerRow(peer),
        historyViews ? historyViews.exchangesRow(peer, columns, openExchanges) : null,
      ]);
      keepingFocus(() => body.replaceChildren(...rows.filter(Boolean)));
    }
    show(message, Boolean(problem) || peers.length === 0);
    show(module, !problem && peers.length > 0);
  }

  // A modal confirmation; resolves true when the operator confirms.
  function confirmAction(title, text, confirmLabel) {
    const dialog = document.getElementById("pn-confirm");
    document.getElementById("pn-confirm-title").textContent = title;
    document.getElementById("pn-confirm-text").textContent = text;
    document.getElementById("pn-confirm-ok").textContent = confirmLabel;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      document.getElementById("pn-confirm-cancel").focus();
    });
  }

  function report(node, kind, text) {
    node.className = `pn-result pn-result-${kind}`;
    node.textContent = text;
    show(node, true);
  }

  async function banOrUnban(peer, action) {
    const name = peer.name || peer.url;
    const confirmed = await confirmAction(
      action === "ban" ? `Ban ${name}?` : `Unban ${name}?`,
      action === "ban"
        ? "Its advertisements disappear from Available Registers at once and its gossip is refused until you unban it."
        : "Its gossip is accepted again; its registers reappear after the next exchange.",
      action === "ban" ? "Ban peer" : "Unban peer"
    );
    if (!confirmed) {
      return;
    }
    const result = document.getElementById("pn-peers-result");
    const base = sources.peers.url.replace(/\/?$/, "/");
    const answer = await request(`${base}${encodeURIComponent(peer.id)}/${action}`, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken },
    });
    if (answer.state === "ok") {
      report(result, "ok", `${name} is ${action === "ban" ? "banned" : "no longer banned"}.`);
    } else {
      report(result, "error", `Could not ${action} ${name}: ${answer.detail || `HTTP ${answer.status || "error"}`}.`);
    }
    refreshSoon();
  }

  // ------------------------------------------------------------------ Sync Status
  function factsRows(rows) {
    return rows.map(([label, value]) => el("tr", {}, el("th", { scope: "row", text: label }), el("td", {}, value)));
  }

  // Statuses of AdvertisementSyncState: in_progress, success, retrying, failed (none before the first attempt).
  const SYNC_IN_FLIGHT = ["in_progress", "retrying"];

  function syncBadge(value) {
    if (!value) {
      return el("span", { className: "pn-quiet", text: "never attempted" });
    }
    const word = String(value).toLowerCase();
    let kind = "quiet";
    if (word === "success") {
      kind = "ok";
    } else if (word === "failed") {
      kind = "error";
    } else if (SYNC_IN_FLIGHT.includes(word)) {
      kind = "warning";
    }
    return badge(kind, word.replace(/_/g, " "));
  }

  function countsLine(counts, names) {
    if (!counts) {
      return el("span", { className: "pn-quiet", text: "–" });
    }
    return el(
      "span",
      { className: "pn-counts-line" },
      names
        .filter((name) => counts[name] !== undefined && counts[name] !== null)
        .map((name) => el("span", {}, el("strong", { text: formatNumber(counts[name]) }), ` ${name}`))
    );
  }

  function renderSyncState() {
    const source = sources.syncState;
    const table = document.getElementById("pn-sync-state");
    const message = document.getElementById("pn-sync-state-message");
    const problem = unavailableText(source, "The Register Service does not report its sync state on this node yet.");
    document.getElementById("pn-resync").disabled = source.result && source.result.state === "missing" && !serves[REGISTER_SERVICE];
    if (problem) {
      message.replaceChildren(el("p", { text: problem }));
      show(message, true);
      show(table, false);
      return null;
    }
    const state = source.data || {};
    table.tBodies[0].replaceChildren(
      ...factsRows([
        ["Status", syncBadge(state.status)],
        ["Reason", state.reason ? String(state.reason) : el("span", { className: "pn-quiet", text: "–" })],
        ["Last attempt", timeNode(state.lastAttemptAt)],
        ["Last success", timeNode(state.lastSuccessAt)],
        ["Registers pushed", formatNumber(state.registersPushed)],
        [
          "Result",
          state.lastSuccessAt
            ? countsLine(state, ["added", "updated", "removed", "unchanged", "held"])
            : el("span", { className: "pn-quiet", text: "–" }),
        ],
        ["Consecutive failures", formatNumber(state.consecutiveFailures)],
        [
          "Last error",
          state.lastError
            ? el("span", { className: "pn-error-text", text: state.lastError })
            : el("span", { className: "pn-quiet", text: "none" }),
        ],
        ["Next retry", timeNode(state.nextRetryAt, "none scheduled")],
      ])
    );
    show(message, false);
    show(table, true);
    return state;
  }

  function renderStoreStatus() {
    const source = sources.storeStatus;
    const table = document.getElementById("pn-store-status");
    const message = document.getElementById("pn-store-message");
    const problem = unavailableText(source, "The advertisement store status is not served here.");
    if (problem) {
      message.replaceChildren(el("p", { text: problem }));
      show(message, true);
      show(table, false);
      return null;
    }
    const store = source.data || {};
    const degraded = store.store === "degraded";
    const redis = el(
      "span",
      {},
      degraded ? badge("error", "Degraded") : badge("ok", "Healthy"),
      degraded && store.degradedSince ? el("span", { className: "pn-quiet" }, " since ", timeNode(store.degradedSince)) : null,
      degraded ? el("span", { className: "pn-help", text: "Serving from memory; writes are journalled for replay." }) : null
    );
    const fullSync = store.lastFullSync;
    const held = Array.isArray(store.heldRemovals) ? store.heldRemovals : [];
    table.tBodies[0].replaceChildren(
      ...factsRows([
        ["Redis", redis],
        [
          "Last store error",
          store.lastError
            ? el("span", { className: "pn-error-text", text: store.lastError })
            : el("span", { className: "pn-quiet", text: "none" }),
        ],
        ["Journal length", formatNumber(store.journalLength)],
        [
          "Advertisements",
          countsLine({ local: store.localAdvertisements, remote: store.remoteAdvertisements }, ["local", "remote"]),
        ],
        [
          "Last full sync received",
          fullSync
            ? el(
                "span",
                {},
                "applied ",
                timeNode(fullSync.appliedAt),
                fullSync.snapshotAt ? el("span", { className: "pn-quiet" }, " · snapshot ", timeNode(fullSync.snapshotAt)) : null
              )
            : el("span", { className: "pn-quiet", text: "none since the store started" }),
        ],
        [
          "Full sync result",
          fullSync && fullSync.result
            ? countsLine(fullSync.result, ["processed", "added", "updated", "removed", "unchanged", "held", "stale"])
            : el("span", { className: "pn-quiet", text: "–" }),
        ],
        [
          "Held removals",
          held.length
            ? el(
                "span",
                {},
                el("strong", { text: `${held.length} held` }),
                " until the next full sync confirms them: ",
                el("span", { className: "pn-held-ids" }, held.map((id) => el("code", { title: id, text: shortId(id) })))
              )
            : el("span", { className: "pn-quiet", text: "none" }),
        ],
      ])
    );
    show(message, false);
    show(table, true);
    return store;
  }

  function renderSync() {
    const state = renderSyncState();
    const store = renderStoreStatus();
    const failing =
      (store && store.store === "degraded") ||
      (state && state.status === "failed");
    setBadge("sync", failing ? "!" : "", failing ? "error" : "", failing ? "needs attention" : "");
    document.getElementById("pn-tab-sync").title = failing ? "Needs attention" : "";
    reportResyncProgress(state);
    renderHistory();
  }

  // The Sync Status tab's charts and runs table, drawn while the tab is shown (a chart needs its width).
  function renderHistory() {
    if (!tabShown("sync")) {
      return;
    }
    renderHistoryPart(
      sources.syncHistory,
      "pn-sync-history",
      "The Register Service does not keep a sync history on this node yet.",
      (runs) => {
        historyViews.renderRunsChart(document.getElementById("pn-sync-chart"), runs);
        historyViews.renderRunsTable(
          document.getElementById("pn-sync-runs"),
          document.getElementById("pn-sync-runs-caption"),
          runs
        );
      }
    );
    renderHistoryPart(
      sources.poolHistory,
      "pn-pool-history",
      "The Peer Service does not keep a pool history on this node yet.",
      (samples) => historyViews.renderPoolChart(document.getElementById("pn-pool-chart"), samples)
    );
  }

  function renderHistoryPart(source, prefix, missingText, draw) {
    const message = document.getElementById(`${prefix}-message`);
    const content = document.getElementById(`${prefix}-content`);
    const problem =
      historyViews && window.uPlot ? unavailableText(source, missingText) : "The charting library did not load.";
    if (problem) {
      message.replaceChildren(el("p", { text: problem }));
      show(message, true);
      show(content, false);
      return;
    }
    show(message, false);
    show(content, true);
    draw(Array.isArray(source.data) ? source.data : []);
  }

  // After "Resync now", say how the sync went once the sync state shows an attempt after the click.
  function reportResyncProgress(state) {
    if (!resync.waiting || !state) {
      return;
    }
    const attempt = parseMoment(state.lastAttemptAt);
    if (!attempt || state.lastAttemptAt === resync.previousAttempt || attempt < resync.requestedAt) {
      return;
    }
    const node = document.getElementById("pn-resync-result");
    if (state.status === "retrying") {
      report(node, "error", `The full sync is retrying by itself: ${state.lastError || "the Peer Service did not answer"}.`);
      return;
    }
    if (SYNC_IN_FLIGHT.includes(state.status)) {
      return;
    }
    resync.waiting = false;
    const succeeded = parseMoment(state.lastSuccessAt);
    if (succeeded && succeeded >= attempt) {
      report(
        node,
        "ok",
        `Full sync finished at ${succeeded.toLocaleTimeString()}: ${plural(state.registersPushed, "register")} pushed.`
      );
    } else {
      report(node, "error", `Full sync attempt failed: ${state.lastError || state.status || "no detail"}.`);
    }
  }

  async function requestResync() {
    const button = document.getElementById("pn-resync");
    const node = document.getElementById("pn-resync-result");
    button.disabled = true;
    report(node, "info", "Asking the Register Service for a full sync…");
    const previousAttempt = (sources.syncState.data || {}).lastAttemptAt || null;
    try {
      const answer = await request(root.dataset.urlResync, { method: "POST", headers: { "X-CSRFToken": csrfToken } });
      if (answer.state === "ok") {
        const task = answer.data && answer.data.taskId ? ` (task ${shortId(answer.data.taskId)})` : "";
        report(node, "info", `Full sync queued${task}; this section updates when it finishes.`);
        // The server's clock, like the sync state's: the browser's may be off.
        const queuedAt = parseMoment(answer.data && answer.data.queuedAt) || new Date();
        resync.requestedAt = new Date(queuedAt.getTime() - CLOCK_SKEW_MS);
        resync.previousAttempt = previousAttempt;
        resync.waiting = true;
      } else if (answer.state === "missing") {
        report(
          node,
          "error",
          serves[REGISTER_SERVICE]
            ? "Resync is not available on this node yet."
            : notServedText({ service: REGISTER_SERVICE })
        );
      } else {
        report(node, "error", `Resync was not queued: ${answer.detail || "no answer"}.`);
      }
    } finally {
      button.disabled = false;
    }
    refreshSoon();
  }
  document.getElementById("pn-resync").addEventListener("click", requestResync);

  // ------------------------------------------------------------------ tabs
  const tabs = Array.from(root.querySelectorAll('[role="tab"]'));

  function selectTab(tab, focus) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      show(document.getElementById(other.getAttribute("aria-controls")), selected);
    }
    document.getElementById("pn-breadcrumb-tab").textContent = tab.firstChild.textContent.trim();
    if (focus) {
      tab.focus();
    }
    const hash = tab.getAttribute("href");
    if (window.location.hash !== hash) {
      history.replaceState(null, "", hash);
    }
    if (hash === "#sync" && status.refreshes > 0) {
      renderHistory(); // what was read before, at once; then the current history
      refreshSoon();
    }
  }

  function tabForHash() {
    return tabs.find((tab) => tab.getAttribute("href") === window.location.hash) || tabs[0];
  }

  for (const tab of tabs) {
    tab.addEventListener("click", (event) => {
      event.preventDefault();
      selectTab(tab, true);
    });
    // Arrow keys move between tabs, as in the WAI-ARIA tabs pattern (automatic activation).
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        selectTab(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
      } else if (event.key === " ") {
        event.preventDefault();
        selectTab(tab, true);
      }
    });
  }
  window.addEventListener("hashchange", () => selectTab(tabForHash(), false));

  // ------------------------------------------------------------------ start
  function render() {
    renderAvailable();
    renderDegradedNote();
    renderPeers();
    renderSync();
    renderStaleBanner();
    renderUpdated();
  }

  selectTab(tabForHash(), false);
  refreshSoon();
})();
