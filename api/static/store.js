// This browser's conversations: their ids and titles, newest first, in localStorage.
// The turns themselves stay on the server (GET /v1/conversations/{id}).

const LIST = "rag.conversations";
const ID = /^[A-Za-z0-9._:-]{1,128}$/;

function valid(item) {
  return item && typeof item.id === "string" && ID.test(item.id) && typeof item.title === "string";
}

/** [{id, title, updated}], newest first. */
export function conversations() {
  try {
    const list = JSON.parse(localStorage.getItem(LIST) || "[]");
    return Array.isArray(list) ? list.filter(valid) : [];
  } catch {
    return [];
  }
}

function save(list) {
  localStorage.setItem(LIST, JSON.stringify(list));
}

/** Add a conversation, or move it to the top; keeps a title given earlier. */
export function remember(id, title) {
  const list = conversations();
  const old = list.find((c) => c.id === id);
  const item = { id, title: old ? old.title : title, updated: Date.now() };
  save([item, ...list.filter((c) => c.id !== id)]);
}

export function rename(id, title) {
  save(conversations().map((c) => (c.id === id ? { ...c, title } : c)));
}

export function forget(id) {
  save(conversations().filter((c) => c.id !== id));
}

/** A conversation's title from its first question. */
export function titleOf(question) {
  const text = question.replace(/\s+/g, " ").trim();
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}
