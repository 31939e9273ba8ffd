// The chat page: ask, watch the answer stream in, open its sources, keep this
// browser's conversations, rate answers. No framework and no build step.

import { ApiError, AuthNeeded, call, events, getJSON, setApiKey } from "./api.js";
import { el, languageName } from "./dom.js";
import { Turn } from "./render.js";
import * as store from "./store.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const page = {
  turns: $("turns"),
  form: $("ask"),
  question: $("question"),
  askButton: $("ask-button"),
  status: $("status"),
  list: $("conversations"),
  none: $("no-conversations"),
  keyForm: $("key-form"),
  key: $("api-key"),
  keyMessage: $("key-message"),
  corpus: $("corpus"),
};

let current = null; // the open conversation's id; null until its first answer
let view = 0; // counts switches of conversation: an answer that arrives after one stays out of the view
let busy = false;
let retry = null; // what to do again once a key is given

const viewer = new Viewer({ onAuth: needKey });

function say(text) {
  page.status.textContent = text;
}

// --- the API key, when the service needs one --------------------------------------

function needKey(again, message) {
  retry = again;
  page.keyMessage.textContent =
    message || "It is kept in this browser tab only and sent with each question.";
  page.keyForm.hidden = false;
  page.key.value = "";
  page.key.focus();
}

page.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey(page.key.value.trim());
  page.keyForm.hidden = true;
  const again = retry;
  retry = null;
  if (again) again();
  else page.question.focus();
});

function keyRefused(again) {
  return (error) => {
    if (!(error instanceof AuthNeeded)) throw error;
    const hadKey = Boolean(sessionStorage.getItem("rag.apiKey"));
    setApiKey(null);
    needKey(again, hadKey ? `That key was not accepted (${error.message}). Try another.` : undefined);
  };
}

// --- the corpus line under the title ------------------------------------------------

async function describeCorpus() {
  try {
    const sources = await getJSON("/v1/sources");
    const langs = [...new Set(sources.map((s) => s.lang))].map(languageName).sort();
    page.corpus.textContent =
      `${sources.length} document${sources.length === 1 ? "" : "s"}` +
      (langs.length ? ` in ${langs.join(", ")}` : "") +
      ". Ask in any language.";
  } catch (error) {
    if (error instanceof AuthNeeded) return keyRefused(describeCorpus)(error);
    page.corpus.textContent =
      error instanceof ApiError && error.status === 503
        ? `Not ready: ${error.message}`
        : `The service could not be reached: ${error.message}`;
  }
}

// --- conversations ----------------------------------------------------------------------

function showConversations() {
  const items = store.conversations();
  page.none.hidden = items.length > 0;
  page.list.replaceChildren(
    ...items.map((c) => {
      const open = el(
        "button",
        { type: "button", class: "open", dir: "auto", "aria-current": c.id === current ? "true" : false },
        c.title,
      );
      open.addEventListener("click", () => openConversation(c.id));
      const rename = el("button", { type: "button", class: "icon-button", "aria-label": `Rename “${c.title}”` }, "✎");
      rename.addEventListener("click", () => renameConversation(c, item));
      const remove = el("button", { type: "button", class: "icon-button", "aria-label": `Delete “${c.title}”` }, "✕");
      remove.addEventListener("click", () => deleteConversation(c.id));
      const item = el("li", { class: c.id === current ? "current" : undefined }, open, rename, remove);
      return item;
    }),
  );
}

function renameConversation(c, item) {
  const input = el("input", { type: "text", value: c.title, "aria-label": "New name", maxlength: "120", dir: "auto" });
  const form = el("form", { class: "rename" }, input);
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    if (save && input.value.trim()) store.rename(c.id, input.value.trim());
    showConversations();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    finish(true);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
  item.replaceChildren(form);
  input.focus();
  input.select();
}

function newConversation() {
  view += 1;
  current = null;
  page.turns.replaceChildren();
  viewer.close();
  showConversations();
  say("");
  page.question.focus();
}

async function openConversation(id) {
  if (busy) return;
  try {
    const conversation = await getJSON(`/v1/conversations/${encodeURIComponent(id)}`);
    view += 1;
    current = id;
    page.turns.replaceChildren();
    for (const t of conversation.turns) {
      const turn = new Turn(t.question, actions);
      turn.finish(t.answer);
      page.turns.append(turn.element);
    }
    showConversations();
    say(`Opened “${store.conversations().find((c) => c.id === id)?.title ?? id}”.`);
    page.question.focus();
  } catch (error) {
    if (error instanceof AuthNeeded) return keyRefused(() => openConversation(id))(error);
    if (error instanceof ApiError && error.status === 404) {
      // gone, or not this browser's: it has no place in the list
      store.forget(id);
      showConversations();
      say("That conversation is no longer available.");
      return;
    }
    say(`The conversation could not be opened: ${error.message}`);
  }
}

async function deleteConversation(id) {
  try {
    await call("DELETE", `/v1/conversations/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof AuthNeeded) return keyRefused(() => deleteConversation(id))(error);
    if (!(error instanceof ApiError && error.status === 404)) {
      say(`The conversation could not be deleted: ${error.message}`);
      return;
    }
  }
  store.forget(id);
  if (id === current) newConversation();
  showConversations();
  say("Conversation deleted.");
}

// --- asking -------------------------------------------------------------------------------

const actions = {
  onCite: (citation, link) => viewer.open(citation, link),
  onRate: async (turn, rating, reason) => {
    const body = { question: turn.question, answer: turn.result, rating };
    if (reason) body.reason = reason;
    if (turn.result.conversation_id) body.conversation_id = turn.result.conversation_id;
    await call("POST", "/v1/feedback", { body });
  },
};

async function ask(question) {
  const asked = view;
  busy = true;
  page.askButton.disabled = true;
  const turn = new Turn(question, actions);
  page.turns.append(turn.element);
  turn.element.scrollIntoView({ block: "end" });
  say("Answering…");
  const body = { message: question, stream: true };
  if (current) body.conversation_id = current;
  let finished = false;
  try {
    const response = await call("POST", "/v1/chat", { body, accept: "text/event-stream" });
    let text = "";
    let citations = [];
    for await (const event of events(response)) {
      if (event.type === "citations") {
        citations = event.data;
        turn.stream(text, citations);
      } else if (event.type === "delta") {
        text += event.data.text;
        turn.stream(text, citations);
      } else if (event.type === "done") {
        finished = true;
        turn.finish(event.data);
        store.remember(event.data.conversation_id, store.titleOf(question));
        if (view === asked) current = event.data.conversation_id;
        showConversations();
        say(event.data.abstained ? "The documents do not answer this." : "Answer ready.");
      } else if (event.type === "error") {
        finished = true;
        turn.fail(event.data.detail || "The answer failed.");
        say("");
      }
    }
    if (!finished) {
      turn.fail("The connection closed before the answer was complete.");
      say("");
    }
  } catch (error) {
    if (error instanceof AuthNeeded) {
      turn.element.remove();
      say("");
      keyRefused(() => ask(question))(error);
    } else {
      turn.fail(error.message);
      say("");
    }
  } finally {
    busy = false;
    page.askButton.disabled = false;
  }
}

page.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = page.question.value.trim();
  if (!question || busy) return;
  page.question.value = "";
  ask(question);
});

page.question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    page.form.requestSubmit();
  }
});

$("new-conversation").addEventListener("click", newConversation);

showConversations();
describeCorpus();
