// The chat page: POST /v1/chat with stream:true, read the Server-Sent Events with fetch streaming,
// show the draft text as it arrives, then replace it with the verified answer and its citations.
// All document text is inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log");
const form = $("ask");
const input = $("question");
const send = $("send");
const statusEl = $("status");
const keyForm = $("key-form");

let apiKey = sessionStorage.getItem("rag-key") || "";
let sessionId = newSessionId();
let pending = null; // a question waiting for an API key

function newSessionId() {
  const rand = window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
  return "web-" + rand.replace(/[^A-Za-z0-9-]/g, "").slice(0, 40);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers() {
  const h = { "Content-Type": "application/json", Accept: "text/event-stream" };
  if (apiKey) h.Authorization = "Bearer " + apiKey;
  return h;
}

async function showStatus() {
  try {
    const res = await fetch("/readyz");
    const info = await res.json();
    if (!res.ok) throw new Error(info.error ? info.error.message : res.statusText);
    const docs = info.documents === 1 ? "1 document" : info.documents + " documents";
    statusEl.textContent = `${docs} · ${info.backend} (${info.model})`;
    statusEl.classList.remove("bad");
    if (info.auth && !apiKey) keyForm.hidden = false; // ask for the key up front
  } catch (err) {
    statusEl.textContent = "server not ready: " + err.message;
    statusEl.classList.add("bad");
  }
}

// ---------------------------------------------------------------- rendering
function addTurn(question) {
  $("empty")?.remove();
  const turn = el("article", "turn");
  turn.dataset.state = "asking";
  turn.append(el("div", "question", question));
  const answer = el("div", "answer streaming");
  const text = el("div", "text");
  answer.append(text);
  turn.append(answer);
  log.append(turn);
  turn.scrollIntoView({ block: "end", behavior: "smooth" });
  return { turn, answer, text };
}

// Same rule as rag.render.quoted_in: the answer holds the quote, perhaps without the heading lines it starts with.
function quotedIn(answer, quote) {
  const norm = (t) => t.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"').replace(/[\u2010-\u2015]/g, "-").toLowerCase().replace(/\s+/g, " ").trim();
  const said = norm(answer);
  const lines = quote.split("\n");
  for (let k = 0; k < lines.length; k++) {
    const rest = norm(lines.slice(k).join(" "));
    if (rest && said.includes(rest)) return true;
    if (lines[k].trim().length > 80) return false;
  }
  return false;
}

function renderAnswer(view, a) {
  const { turn, answer, text } = view;
  answer.classList.remove("streaming");
  if (a.standalone_question) answer.prepend(el("div", "understood", "Understood as: " + a.standalone_question));
  text.textContent = a.answer;
  if (a.refused) answer.classList.add("refused");
  const warnings = [...(a.flags || [])];
  if (a.dropped_citations) warnings.push(`${a.dropped_citations} citation(s) dropped: their quotes are not in the sources`);
  if (warnings.length) {
    const list = el("ul", "flags");
    for (const w of warnings) list.append(el("li", "", "⚠ " + w));
    answer.append(list);
  }
  if (a.citations && a.citations.length) {
    const box = el("section", "sources");
    box.append(el("h2", "", a.citations.length === 1 ? "Source" : "Sources"));
    a.citations.forEach((c, i) => {
      const shown = quotedIn(a.answer, c.quote); // the answer already says it: show the source, not the sentence again
      const details = el(shown ? "div" : "details", "citation");
      if (!shown) details.open = i === 0; // the first quote is shown; the rest expand on click
      const summary = el(shown ? "div" : "summary", "head");
      summary.append(el("span", "n", String(i + 1)), el("span", "src", c.source));
      if (c.page != null) summary.append(el("span", "page", `p. ${c.page}`));
      if (c.start != null) summary.append(el("span", "span", `chars ${c.start}–${c.end}`));
      if (shown) summary.append(el("span", "quoted", "quoted above"));
      details.append(summary);
      if (!shown) details.append(el("blockquote", "quote", c.quote));
      box.append(details);
    });
    answer.append(box);
  }
  const secs = a.latency_ms >= 1000 ? (a.latency_ms / 1000).toFixed(1) + " s" : Math.round(a.latency_ms) + " ms";
  answer.append(el("div", "meta", `${a.backend} · ${a.model} · ${secs}${a.usage && a.usage.cached ? " · cached" : ""}`));
  turn.dataset.state = "done";
}

function renderError(view, message) {
  view.answer.classList.remove("streaming");
  view.answer.classList.add("failed");
  view.text.textContent = message;
  view.turn.dataset.state = "error";
}

// ---------------------------------------------------------------- SSE over fetch
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

async function ask(question) {
  const view = addTurn(question);
  send.disabled = true;
  try {
    const response = await fetch("/v1/chat", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ question, session_id: sessionId, stream: true }),
    });
    if (response.status === 401) {
      view.turn.remove();
      pending = question;
      if (apiKey) keyForm.querySelector("label").textContent = "That key was not accepted. Try another:";
      keyForm.hidden = false;
      $("key").focus();
      return;
    }
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      if (response.status === 429) message = "Too many questions at once. " + message;
      renderError(view, message);
      return;
    }
    let draft = "";
    for await (const { event, data } of events(response)) {
      if (event === "delta") {
        draft += data.text;
        view.text.textContent = draft;
        view.turn.dataset.state = "streaming";
      } else if (event === "answer") {
        renderAnswer(view, data);
      } else if (event === "error") {
        renderError(view, data.error.message);
      }
    }
    if (view.turn.dataset.state !== "done" && view.turn.dataset.state !== "error") {
      renderError(view, "The answer was cut off. Try again.");
    }
  } catch (err) {
    renderError(view, "Could not reach the server: " + err.message);
  } finally {
    send.disabled = false;
    view.turn.scrollIntoView({ block: "end", behavior: "smooth" });
  }
}

// ---------------------------------------------------------------- wiring
form.addEventListener("submit", (e) => {
  e.preventDefault();
  const question = input.value.trim();
  if (!question || send.disabled) return;
  input.value = "";
  input.style.height = "";
  ask(question);
});

input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    form.requestSubmit();
  }
});

input.addEventListener("input", () => {
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 192) + "px";
});

keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  apiKey = $("key").value.trim();
  sessionStorage.setItem("rag-key", apiKey);
  keyForm.hidden = true;
  if (pending) {
    const q = pending;
    pending = null;
    ask(q);
  }
});

$("new-chat").addEventListener("click", () => {
  sessionId = newSessionId();
  log.replaceChildren();
  const empty = el("section", "empty");
  empty.id = "empty";
  empty.append(el("h1", "", "New conversation"), el("p", "", "Ask a question about your documents."));
  log.append(empty);
  input.focus();
});

showStatus();
const initial = new URLSearchParams(location.search).get("q");
if (initial) ask(initial);
else input.focus();
