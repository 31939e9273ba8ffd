// The source viewer beside the answers: the cited document as a reader sees it (an
// HTML or Markdown file without its markup: view=display) with the cited span
// highlighted (a <mark>) and scrolled into view, right to left where the language is.

import { ApiError, AuthNeeded, call } from "./api.js";
import { direction, languageName, lines } from "./dom.js";

/** The viewer request for a citation: its permalink (same origin), whole document,
 * in its display view. */
export function sourcePath(citation) {
  let path;
  if (citation.url) {
    const url = new URL(citation.url, location.href);
    path = url.pathname + url.search;
  } else {
    const name = citation.source.split("/").map(encodeURIComponent).join("/");
    path = `/v1/sources/${name}?start=${citation.start_char}&end=${citation.end_char}`;
  }
  return `${path}${path.includes("?") ? "&" : "?"}whole=true&view=display`;
}

export class Viewer {
  /** @param {{onAuth: (retry: () => void) => void}} actions */
  constructor(actions) {
    this.actions = actions;
    this.root = document.getElementById("viewer");
    this.title = document.getElementById("viewer-title");
    this.meta = document.getElementById("viewer-meta");
    this.notice = document.getElementById("viewer-notice");
    this.body = document.getElementById("viewer-text");
    this.opener = null;
    this.request = 0;
    document.getElementById("viewer-close").addEventListener("click", () => this.close());
    this.root.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
  }

  close() {
    this.root.hidden = true;
    document.body.classList.remove("viewer-open");
    if (this.opener && this.opener.isConnected) this.opener.focus();
  }

  say(text) {
    this.notice.textContent = text;
    this.notice.hidden = !text;
  }

  async open(citation, opener) {
    const request = ++this.request;
    this.opener = opener;
    this.root.hidden = false;
    document.body.classList.add("viewer-open");
    this.root.setAttribute("aria-busy", "true");
    this.title.textContent = citation.title || citation.source;
    this.meta.textContent = `${citation.source} · loading…`;
    this.say("");
    this.body.replaceChildren();
    try {
      const span = await (await call("GET", sourcePath(citation))).json();
      if (request === this.request) this.show(span);
    } catch (error) {
      if (request !== this.request) return;
      if (error instanceof AuthNeeded) {
        this.actions.onAuth(() => this.open(citation, opener));
        return;
      }
      this.meta.textContent = `${citation.source} · ${lines(citation.start_line, citation.end_line)}`;
      if (error instanceof ApiError && error.status === 409) {
        this.say(`This passage changed since the link was made, so it is not highlighted. ${error.message}`);
      } else if (error instanceof ApiError && error.status === 404) {
        this.say(`This document is no longer in the index. ${error.message}`);
      } else {
        this.say(`The source could not be shown: ${error.message}`);
      }
      this.title.focus({ preventScroll: true });
    } finally {
      if (request === this.request) this.root.setAttribute("aria-busy", "false");
    }
  }

  show(span) {
    this.title.textContent = span.title || span.source;
    this.meta.textContent =
      `${span.source} · ${lines(span.start_line, span.end_line)} · ${languageName(span.lang)} (${span.lang})`;
    this.say(span.moved ? "The file changed since this answer was given; the passage was found at its new place." : "");
    this.body.setAttribute("dir", direction(span.lang));
    this.body.setAttribute("lang", span.lang);
    const mark = document.createElement("mark");
    mark.textContent = span.text;
    this.body.replaceChildren(span.before, mark, span.after);
    mark.scrollIntoView({ block: "center" });
    this.title.focus({ preventScroll: true });
  }
}
