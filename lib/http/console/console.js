/**
 * The live console: one `EventSource` for every topic it follows (browsers
 * hold at most six HTTP/1.1 connections per origin), a bounded log of what
 * came, publish, presence and the token cookie. Whatever the server sends
 * is shown through `textContent`, never parsed as HTML.
 *
 * @module
 */

import {
  clockTime,
  cursorText,
  eventsUrl,
  parseCursor,
  parseTopics,
  payloadBytes,
  refusal,
  showPayload,
  toBase64,
} from "./format.js";

/** Rows kept in the log; older ones leave the page. */
const MAX_ROWS = 500;
/** Bound on each request the page makes (the stream aside). */
const REQUEST_TIMEOUT_MS = 10_000;

/** @param {string} id */
const element = (id) => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`The page has no element #${id}`);
  return found;
};
const ui = {
  state: element("state"),
  clock: element("clock"),
  counts: element("counts"),
  rows: element("rows"),
  subscribe: /** @type {HTMLFormElement} */ (element("subscribe")),
  topics: /** @type {HTMLInputElement} */ (element("topics")),
  name: /** @type {HTMLInputElement} */ (element("name")),
  after: /** @type {HTMLInputElement} */ (element("after")),
  stop: element("stop"),
  pause: element("pause"),
  clear: element("clear"),
  publish: /** @type {HTMLFormElement} */ (element("publish")),
  publishTopic: /** @type {HTMLInputElement} */ (element("publish-topic")),
  publishPayload: /** @type {HTMLTextAreaElement} */ (
    element("publish-payload")
  ),
  publishBase64: /** @type {HTMLInputElement} */ (element("publish-base64")),
  publishResult: element("publish-result"),
  presence: /** @type {HTMLFormElement} */ (element("presence")),
  presenceTopic: /** @type {HTMLInputElement} */ (element("presence-topic")),
  presenceResult: element("presence-result"),
  subscribers: element("subscribers"),
  subscriberRows: element("subscriber-rows"),
  token: /** @type {HTMLFormElement} */ (element("token")),
  tokenValue: /** @type {HTMLInputElement} */ (element("token-value")),
  forget: element("forget"),
  tokenResult: element("token-result"),
  tokenStatus: element("token-status"),
};

/**
 * @typedef {{ kind: "event", cursor: string, time: string, topic: string,
 *   payload: ReturnType<typeof showPayload> }
 *   | { kind: "notice" | "warning" | "error", text: string }} Row
 */

/** The subscription the page holds, and what it has seen of it. */
const stream = {
  /** @type {EventSource | undefined} */
  source: undefined,
  /** @type {{ topics: string[], name: string, after: string } | undefined} */
  asked: undefined,
  /** `first` events on this source: more than one means it reconnected. */
  opened: 0,
  /** The connection dropped and the browser is retrying. */
  down: false,
  /** The server said goodbye: the end of the response is expected. */
  leaving: false,
  /** Attempts since the last refusal that made the page try again. */
  retries: 0,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  retry: undefined,
  /** The last event's cursor. */
  last: "",
  /** @type {{ epoch: string, seq: bigint } | undefined} */
  lastParsed: undefined,
  counts: { events: 0, gaps: 0, reconnects: 0, disorder: 0 },
};

/** Rows not yet on the page (drawn once per frame, so a burst costs one layout). */
/** @type {Row[]} */
let pending = [];
let paused = false;
let frame = 0;

/** @param {Row} row */
function addRow(row) {
  pending.push(row);
  if (pending.length > MAX_ROWS * 2) pending = pending.slice(-MAX_ROWS);
  if (!paused && !frame) frame = requestAnimationFrame(draw);
}

function draw() {
  frame = 0;
  const rows = pending.length > MAX_ROWS ? pending.slice(-MAX_ROWS) : pending;
  pending = [];
  const fragment = document.createDocumentFragment();
  for (let i = rows.length - 1; i >= 0; i--) {
    fragment.append(rowElement(rows[i]));
  }
  ui.rows.prepend(fragment);
  while (ui.rows.childElementCount > MAX_ROWS) {
    ui.rows.lastElementChild?.remove();
  }
  showCounts();
}

/**
 * @param {string} tag
 * @param {string} [text]
 * @param {string} [className]
 */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** @param {Row} row */
function rowElement(row) {
  const tr = document.createElement("tr");
  tr.dataset.kind = row.kind;
  if (row.kind !== "event") {
    tr.className = row.kind;
    const cell = el("td", row.text);
    cell.colSpan = 4;
    tr.append(cell);
    return tr;
  }
  tr.dataset.cursor = row.cursor;
  tr.dataset.topic = row.topic;
  const payload = el("td", undefined, "payload");
  payload.dataset.payload = row.payload.kind;
  if (row.payload.kind === "empty") {
    payload.append(el("span", "(empty)", "empty"));
  } else {
    if (row.payload.kind === "base64") {
      payload.append(
        el("span", `base64 · ${plural(row.payload.bytes, "byte")}`, "tag"),
      );
    }
    payload.append(row.payload.text);
    if (row.payload.cut) {
      payload.append(
        el("span", ` … ${plural(row.payload.bytes, "byte")} in all`, "tag"),
      );
    }
  }
  tr.append(
    el("td", row.cursor, "cursor"),
    el("td", row.time),
    el("td", row.topic),
    payload,
  );
  return tr;
}

function showCounts() {
  const { events, gaps, reconnects, disorder } = stream.counts;
  const parts = [
    plural(events, "event"),
    plural(gaps, "gap"),
    plural(reconnects, "resume"),
  ];
  if (disorder) parts.push(`${disorder} out of order`);
  if (stream.last) parts.push(`last ${stream.last}`);
  if (paused && pending.length) parts.push(`${pending.length} waiting`);
  ui.counts.textContent = parts.join(" · ");
}

/**
 * @param {"connecting" | "open" | "reconnecting" | "closed" | "refused"} state
 * @param {string} text
 */
function setState(state, text) {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

/** @param {unknown} error */
const message = (error) =>
  error instanceof Error ? error.message : String(error);

/** @param {number} n @param {string} unit */
const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;

/** @param {string} text */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** @param {{ topics: string[], name: string, after: string }} asked */
function subscribe(asked) {
  stop();
  stream.asked = asked;
  stream.opened = 0;
  stream.down = false;
  stream.leaving = false;
  stream.lastParsed = asked.after ? parseCursor(asked.after) : undefined;
  const url = eventsUrl(document.baseURI, asked);
  const source = new EventSource(url);
  stream.source = source;
  const topics = asked.topics.length ? asked.topics.join(", ") : "every topic";
  setState("connecting", `Connecting to ${topics}…`);
  source.onopen = () => {
    if (stream.source === source) setState("open", `Following ${topics}`);
  };
  source.addEventListener("first", (e) => {
    if (stream.source !== source) return;
    onFirst(/** @type {MessageEvent} */ (e), topics);
  });
  source.onmessage = (e) => {
    if (stream.source === source) onEvent(e);
  };
  source.addEventListener("gap", (e) => {
    if (stream.source === source) onGap(/** @type {MessageEvent} */ (e));
  });
  source.addEventListener("goodbye", (e) => {
    if (stream.source === source) onGoodbye(/** @type {MessageEvent} */ (e));
  });
  source.onerror = () => {
    if (stream.source === source) onError(source, url);
  };
  const shown = new URL(location.href);
  shown.search = "";
  for (const topic of asked.topics) shown.searchParams.append("topic", topic);
  history.replaceState(null, "", shown);
}

function stop() {
  clearTimeout(stream.retry);
  stream.source?.close();
  stream.source = undefined;
  setState("closed", "Stopped");
}

/** @param {MessageEvent} e @param {string} topics */
function onFirst(e, topics) {
  const first = parseJson(e.data) ?? {};
  const cursor = cursorText(first.cursor);
  const resuming = stream.opened > 0 || Boolean(stream.asked?.after);
  stream.opened++;
  stream.retries = 0;
  stream.down = false;
  stream.leaving = false;
  setState("open", `Following ${topics}`);
  if (!resuming) {
    addRow({
      kind: "notice",
      text: `Subscribed to ${topics} as subscription ${
        first.subscriptionId ?? "?"
      }: events after ${cursor} follow`,
    });
    stream.lastParsed = parseCursor(cursor);
    return;
  }
  stream.counts.reconnects++;
  if (first.recovered) {
    addRow({
      kind: "notice",
      text: `Resumed after ${cursor}: nothing missed`,
    });
  } else {
    addRow({
      kind: "warning",
      text: `Resumed at ${cursor}, not recovered${
        first.reason ? ` (${first.reason})` : ""
      }: events before it may be missing`,
    });
    stream.lastParsed = parseCursor(cursor);
  }
}

/** @param {MessageEvent} e */
function onEvent(e) {
  const event = parseJson(e.data);
  if (!event) {
    addRow({
      kind: "error",
      text: `Unreadable event: ${e.data.slice(0, 200)}`,
    });
    return;
  }
  const cursor = e.lastEventId || cursorText(event);
  stream.counts.events++;
  stream.last = cursor;
  const parsed = parseCursor(cursor);
  const before = stream.lastParsed;
  if (
    parsed && before && parsed.epoch === before.epoch &&
    parsed.seq <= before.seq
  ) {
    stream.counts.disorder++;
    addRow({
      kind: "warning",
      text: `Out of order: ${cursor} came after ${before.epoch}:${before.seq}`,
    });
  }
  if (parsed) stream.lastParsed = parsed;
  let payload;
  try {
    payload = showPayload(event.payload);
  } catch {
    payload = {
      kind: "base64",
      text: String(event.payload).slice(0, 200),
      bytes: 0,
      cut: String(event.payload).length > 200,
    };
  }
  const time = clockTime(event.timeMs);
  const at = new Date(Number(event.timeMs ?? 0));
  if (event.topic === "tick" && !Number.isNaN(at.getTime())) {
    ui.clock.textContent = time.slice(0, 8);
    ui.clock.setAttribute("datetime", at.toISOString());
  }
  addRow({ kind: "event", cursor, time, topic: event.topic ?? "", payload });
}

/** @param {MessageEvent} e */
function onGap(e) {
  const gap = parseJson(e.data) ?? {};
  stream.counts.gaps++;
  const missed = Number(gap.missed ?? 0);
  addRow({
    kind: "warning",
    text: `Gap: events ${gap.fromSeq ?? "?"} to ${
      gap.toSeq ?? "?"
    } were not delivered (${
      missed ? `${missed} missed` : "how many is unknown"
    }; ${gap.reason || "no reason given"})`,
  });
}

/** @param {MessageEvent} e */
function onGoodbye(e) {
  const goodbye = parseJson(e.data) ?? {};
  const reason = goodbye.reason || "no reason given";
  if (goodbye.reconnect) {
    stream.leaving = true;
    const after = Number(goodbye.reconnectAfterMs ?? 0);
    addRow({
      kind: "notice",
      text: `The server said goodbye (${reason}); resuming after ${
        stream.last || "the start"
      } in about ${
        after < 1000 ? `${after} ms` : `${(after / 1000).toFixed(1)} s`
      }`,
    });
    setState("reconnecting", "Server going away; resuming soon…");
  } else {
    addRow({ kind: "error", text: `The server ended the stream: ${reason}` });
    stop();
    setState("closed", `Ended by the server: ${reason}`);
  }
}

/** @param {EventSource} source @param {URL} url */
function onError(source, url) {
  if (source.readyState === EventSource.CLOSED) {
    // Not 200 or not an event stream: the browser gives up on this source.
    // EventSource hides the status, so ask once more to show the reason.
    setState("connecting", "Checking why the server refused…");
    explain(url).then(({ status, reason, retryAfterS }) => {
      if (stream.source !== source) return;
      if (status === 401 || status === 403 || status === 400) {
        addRow({ kind: "error", text: `Subscription refused: ${reason}` });
        setState("refused", `Refused: ${reason}`);
        return;
      }
      // Busy, unavailable or unreachable: try again, later each time.
      const delayS = retryAfterS ?? Math.min(30, 2 ** stream.retries);
      stream.retries++;
      addRow({
        kind: "warning",
        text: `Subscription failed: ${reason}; trying again in ${delayS} s`,
      });
      setState("reconnecting", `Trying again in ${delayS} s…`);
      stream.retry = setTimeout(() => {
        if (stream.source === source) resubscribe();
      }, delayS * 1000 * (1 + Math.random() / 4));
    });
    return;
  }
  if (!stream.down) {
    stream.down = true;
    if (!stream.leaving) {
      addRow({
        kind: "warning",
        text: `Connection lost after ${
          stream.last || "the start"
        }; reconnecting…`,
      });
    }
  }
  setState("reconnecting", "Reconnecting…");
}

/**
 * Why a subscription was refused: its status, a one-line reason, and the
 * `retry-after` seconds when the server said.
 *
 * @param {URL} url
 * @returns {Promise<{ status: number, reason: string, retryAfterS?: number }>}
 */
async function explain(url) {
  try {
    const response = await fetch(url, {
      headers: { accept: "text/event-stream" },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const after = Number(response.headers.get("retry-after"));
    const retryAfterS = after > 0 ? Math.min(after, 300) : undefined;
    if (response.ok) {
      const type = response.headers.get("content-type") ?? "none";
      await response.body?.cancel();
      return {
        status: response.status,
        reason:
          `the server answered ${response.status} with content type ${type}`,
        retryAfterS,
      };
    }
    return {
      status: response.status,
      reason: refusal(response.status, await response.text()),
      retryAfterS,
    };
  } catch (error) {
    return {
      status: 0,
      reason: `the server cannot be reached (${message(error)})`,
    };
  }
}

/** Whether the server takes tokens at all (until it says, assume so). */
let takesTokens = true;

/** What the server says of tokens, in the token form. */
async function showSession() {
  try {
    const response = await fetch(new URL("v1/session", document.baseURI), {
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (!response.ok) {
      await response.body?.cancel();
      return;
    }
    const { authenticated, tokens } = await response.json();
    takesTokens = Boolean(tokens);
    ui.tokenStatus.textContent = !tokens
      ? "This server takes no tokens: everything is open."
      : authenticated
      ? "A token is set for this server."
      : "This server needs a token.";
  } catch {
    // An older server, or none: the form still works.
  }
}

/**
 * A Connect unary call in JSON: the reply, or an error saying why.
 *
 * @param {string} method
 * @param {object} message
 */
async function call(method, message) {
  const response = await fetch(
    new URL(`helloworld.Greeter/${method}`, document.baseURI),
    {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "connect-protocol-version": "1",
      },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    },
  );
  const body = await response.text();
  if (!response.ok) throw new Error(refusal(response.status, body));
  return parseJson(body) ?? {};
}

/**
 * @param {HTMLElement} output
 * @param {string} text
 * @param {boolean} [failed]
 */
function say(output, text, failed = false) {
  output.textContent = text;
  output.classList.toggle("error", failed);
}

async function publish() {
  const topic = ui.publishTopic.value.trim();
  let payload;
  try {
    payload = toBase64(
      payloadBytes(ui.publishPayload.value, ui.publishBase64.checked),
    );
  } catch (error) {
    say(ui.publishResult, message(error), true);
    return;
  }
  say(ui.publishResult, "Publishing…");
  try {
    const reply = await call("Publish", { topic, payload });
    say(
      ui.publishResult,
      `Published on ${topic} at ${cursorText(reply.cursor)}`,
    );
  } catch (error) {
    say(ui.publishResult, `Not published: ${message(error)}`, true);
  }
}

async function listPresence() {
  const topic = ui.presenceTopic.value.trim();
  say(ui.presenceResult, "Listing…");
  let reply;
  try {
    reply = await call(
      "ListSubscribers",
      topic ? { topic, limit: 100 } : { limit: 100 },
    );
  } catch (error) {
    ui.subscribers.hidden = true;
    say(ui.presenceResult, `Cannot list: ${message(error)}`, true);
    return;
  }
  const subscribers = reply.subscribers ?? [];
  const total = reply.total ?? subscribers.length;
  ui.subscriberRows.replaceChildren(...subscribers.map((s) => {
    const tr = document.createElement("tr");
    const topics = (s.topics ?? []).join(", ") +
      (s.topicCount > (s.topics ?? []).length
        ? ` (+${s.topicCount - s.topics.length})`
        : "");
    tr.append(
      el("td", s.name ?? ""),
      el("td", topics || "*"),
      el("td", String(s.delivered ?? 0)),
      el("td", String(s.dropped ?? 0)),
    );
    return tr;
  }));
  ui.subscribers.hidden = subscribers.length === 0;
  say(
    ui.presenceResult,
    `${total} subscriber${total === 1 ? "" : "s"}${
      topic ? ` of ${topic}` : ""
    }` +
      (subscribers.length < total
        ? `; the first ${subscribers.length} listed`
        : ""),
  );
}

/** @param {"POST" | "DELETE"} method @param {string} [token] */
async function session(method, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : undefined;
  const response = await fetch(new URL("v1/session", document.baseURI), {
    method,
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!response.ok) {
    throw new Error(refusal(response.status, await response.text()));
  }
  await response.body?.cancel();
}

/** Subscribes again (the cookie changed), resuming where the stream was. */
function resubscribe() {
  if (!stream.asked) return;
  subscribe({ ...stream.asked, after: stream.last || stream.asked.after });
}

function askedFromForm() {
  return {
    topics: parseTopics(ui.topics.value),
    name: ui.name.value.trim(),
    after: ui.after.value.trim(),
  };
}

ui.subscribe.addEventListener("submit", (e) => {
  e.preventDefault();
  const asked = askedFromForm();
  if (asked.after && !parseCursor(asked.after)) {
    addRow({
      kind: "error",
      text:
        `Cannot resume after "${asked.after}": a cursor is EPOCH:SEQ, as the log shows`,
    });
    return;
  }
  stream.last = "";
  subscribe(asked);
});
ui.stop.addEventListener("click", () => {
  stop();
  addRow({
    kind: "notice",
    text: `Stopped after ${stream.last || "the start"}`,
  });
});
ui.pause.addEventListener("click", () => {
  paused = !paused;
  ui.pause.setAttribute("aria-pressed", String(paused));
  ui.pause.textContent = paused ? "Resume" : "Pause";
  if (!paused && pending.length && !frame) frame = requestAnimationFrame(draw);
  showCounts();
});
ui.clear.addEventListener("click", () => {
  pending = [];
  ui.rows.replaceChildren();
  showCounts();
});
ui.publish.addEventListener("submit", (e) => {
  e.preventDefault();
  publish();
});
ui.presence.addEventListener("submit", (e) => {
  e.preventDefault();
  listPresence();
});
ui.token.addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = ui.tokenValue.value.trim();
  if (!takesTokens) {
    ui.tokenValue.value = "";
    say(ui.tokenResult, "This server takes no tokens: nothing to set");
    return;
  }
  say(ui.tokenResult, "Checking…");
  try {
    await session("POST", token);
    ui.tokenValue.value = "";
    say(ui.tokenResult, "Token accepted; the stream uses it now");
    showSession();
    resubscribe();
  } catch (error) {
    say(ui.tokenResult, `Token refused: ${message(error)}`, true);
  }
});
ui.forget.addEventListener("click", async () => {
  try {
    await session("DELETE");
    say(ui.tokenResult, "Token forgotten");
    showSession();
    resubscribe();
  } catch (error) {
    say(ui.tokenResult, `Cannot forget the token: ${message(error)}`, true);
  }
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && pending.length && !paused && !frame) {
    frame = requestAnimationFrame(draw);
  }
});

// Opens on the page's ?topic= (repeatable) and ?name=, or on the clock.
const query = new URLSearchParams(location.search);
const initialTopics = query.getAll("topic").flatMap(parseTopics);
ui.topics.value = (query.has("topic") ? initialTopics : ["tick"]).join(" ");
ui.name.value = query.get("name") ??
  `console-${
    toBase64(crypto.getRandomValues(new Uint8Array(3))).replace(/[+/]/g, "x")
  }`;
ui.after.value = query.get("after") ?? "";
showCounts();
showSession();
subscribe(askedFromForm());
