// One question and its answer on the page: the answer streams in, its [n] markers
// become links to the cited passages, then come the sources, warnings and rating.

import { direction, el, languageName, lines } from "./dom.js";

const MARKER = /\[(\d{1,3})\]/g;

// what the service's warning codes mean to a reader (the part before any ":")
const WARNINGS = {
  llm_unavailable: "The language model could not be reached; this answer quotes the documents instead.",
  llm_interrupted: "The language model stopped early; the answer may be incomplete.",
  llm_no_valid_citation: "The language model cited nothing it was given; this answer quotes the documents instead.",
  llm_link_removed: "A link in the answer was removed.",
  llm_image_removed: "An image in the answer was removed.",
  invalid_citation: "A citation the model made up was removed.",
  unresolved_marker: "A citation number that names no source was removed.",
  citation_mismatch: "A source changed since it was indexed; its citation was removed.",
  no_quantity: "The documents give no figure for this; the closest passages are quoted.",
};

export function warningText(code) {
  return WARNINGS[code.split(":")[0]] || code;
}

let counter = 0;
function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

function citationWhere(c) {
  return `${c.source}, ${lines(c.start_line, c.end_line)}`;
}

function excerpt(text, size = 240) {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > size ? `${flat.slice(0, size - 1)}…` : flat;
}

export class Turn {
  /**
   * @param {string} question
   * @param {{onCite: (citation, link) => void, onRate: (turn, rating, reason) => Promise<void>}} actions
   */
  constructor(question, actions) {
    this.question = question;
    this.actions = actions;
    this.result = null;
    this.label = el("p", { class: "answer-label" }, "Answer");
    this.text = el("div", { class: "answer-text", dir: "auto", "aria-live": "polite", "aria-busy": "true" });
    this.answer = el("article", { class: "answer", "aria-label": "Answer" }, this.label, this.text);
    this.element = el(
      "li",
      { class: "turn" },
      el("p", { class: "question", dir: "auto" }, el("span", { class: "visually-hidden" }, "You asked: "), question),
      this.answer,
    );
  }

  citeLink(c, text, extra = {}) {
    const link = el(
      "a",
      { class: "cite", href: c.url || "#", title: citationWhere(c), "data-n": c.n, ...extra },
      text,
    );
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.actions.onCite(c, link);
    });
    return link;
  }

  /** The answer text as DOM: text nodes, and a link for each [n] that names a citation. */
  answerNodes(text, citations) {
    const byN = new Map(citations.map((c) => [c.n, c]));
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(MARKER)) {
      const c = byN.get(Number(match[1]));
      if (!c) continue;
      fragment.append(
        text.slice(last, match.index),
        this.citeLink(c, match[0], { "aria-label": `Source ${c.n}: ${citationWhere(c)}` }),
      );
      last = match.index + match[0].length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  /** Show the answer as far as it has arrived. */
  stream(text, citations) {
    this.text.replaceChildren(this.answerNodes(text, citations));
  }

  /** The final Answer JSON: its text, sources, warnings, and the rating controls. */
  finish(answer) {
    this.result = answer;
    const abstained = Boolean(answer.abstained);
    this.answer.classList.toggle("abstained", abstained);
    this.answer.dataset.state = abstained ? "abstained" : "answered";
    if (abstained) {
      this.label.replaceChildren(
        el("span", { class: "label-icon", "aria-hidden": "true" }, "∅"),
        " Not in the documents",
      );
    }
    this.text.replaceChildren(this.answerNodes(answer.answer, answer.citations));
    this.text.setAttribute("aria-busy", "false");
    if (answer.citations.length) this.answer.append(this.sources(answer.citations));
    if (answer.warnings && answer.warnings.length) {
      this.answer.append(
        el(
          "p",
          { class: "warnings" },
          el("span", { class: "visually-hidden" }, "Note: "),
          answer.warnings.map(warningText).join(" "),
        ),
      );
    }
    this.answer.append(this.feedback());
  }

  fail(message) {
    this.answer.classList.add("error");
    this.answer.dataset.state = "error";
    this.label.replaceChildren(el("span", { class: "label-icon", "aria-hidden": "true" }, "!"), " No answer");
    this.text.replaceChildren(el("span", { role: "alert" }, message));
    this.text.setAttribute("aria-busy", "false");
  }

  sources(citations) {
    const id = uid("sources");
    const list = el("ol", { class: "sources", "aria-labelledby": id });
    for (const c of citations) {
      list.append(
        el(
          "li",
          {},
          this.citeLink(c, `[${c.n}] ${c.source}`),
          el("span", { class: "muted small" }, ` ${lines(c.start_line, c.end_line)} · ${languageName(c.lang)}`),
          el("q", { lang: c.lang, dir: direction(c.lang) }, excerpt(c.text || c.quote)),
        ),
      );
    }
    return el("section", { class: "sources-box" }, el("h3", { id, class: "small" }, "Sources"), list);
  }

  feedback() {
    const status = el("p", { class: "feedback-status small muted", role: "status" });
    const reasonId = uid("reason");
    const reason = el("input", { id: reasonId, name: "reason", type: "text", maxlength: "2000", dir: "auto" });
    const form = el(
      "form",
      { class: "reason", hidden: true },
      el("label", { for: reasonId }, "What was right or wrong? (optional)"),
      reason,
      el("button", { type: "submit" }, "Send"),
      el("button", { type: "button", class: "cancel" }, "Cancel"),
    );
    const button = (rating, icon, text) =>
      el(
        "button",
        { type: "button", class: `rate rate-${rating}`, "aria-pressed": "false", "data-rating": rating },
        el("span", { class: "rate-icon", "aria-hidden": "true" }, icon),
        ` ${text}`,
      );
    const up = button("up", "▲", "Helpful");
    const down = button("down", "▼", "Not helpful");
    let rating = null;
    for (const b of [up, down]) {
      b.addEventListener("click", () => {
        rating = b.dataset.rating;
        up.setAttribute("aria-pressed", String(rating === "up"));
        down.setAttribute("aria-pressed", String(rating === "down"));
        form.hidden = false;
        status.textContent = "";
        reason.focus();
      });
    }
    form.querySelector(".cancel").addEventListener("click", () => {
      form.hidden = true;
      rating = null;
      up.setAttribute("aria-pressed", "false");
      down.setAttribute("aria-pressed", "false");
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!rating) return;
      status.textContent = "Sending…";
      try {
        await this.actions.onRate(this, rating, reason.value.trim() || null);
        form.hidden = true;
        reason.value = "";
        status.textContent = "Thank you: your rating was saved.";
      } catch (error) {
        status.textContent = `Your rating was not saved: ${error.message}`;
      }
    });
    return el(
      "div",
      { class: "feedback", role: "group", "aria-label": "Rate this answer" },
      up,
      down,
      form,
      status,
    );
  }
}
