// The HTTP API as the page uses it: the API key (kept for this tab only, in
// sessionStorage), problem+json errors, and server-sent events read from a fetch()
// body (EventSource cannot POST).

const KEY = "rag.apiKey";

/** The service answered 401: it needs a (valid) API key. */
export class AuthNeeded extends Error {}

/** Any other refusal; `status` is the HTTP status, the message the problem's detail. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

async function problemDetail(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.title || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status} ${response.statusText}`.trim();
  }
}

/**
 * fetch() a same-origin API path with the key; resolves to the Response when it is
 * 2xx, else throws AuthNeeded (401) or ApiError.
 */
export async function call(method, path, { body, accept = "application/json", signal } = {}) {
  const headers = { Accept: accept };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, credentials: "same-origin", signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) throw new AuthNeeded(await problemDetail(response));
  if (!response.ok) throw new ApiError(response.status, await problemDetail(response));
  return response;
}

export async function getJSON(path) {
  return (await call("GET", path)).json();
}

/** One server-sent event block ("event: x\ndata: ...") -> {type, data}, or null. */
function parseEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return null;
  return { type, data: JSON.parse(data.join("\n")) };
}

/** The events of a text/event-stream Response, as they arrive: {type, data}. */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // line ends may be \r\n, \r or \n; a \r at the end may be half of a \r\n
    const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
    let text = buffer.slice(0, cut).replace(/\r\n?/g, "\n");
    buffer = buffer.slice(cut);
    let end;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const event = parseEvent(text.slice(0, end));
      text = text.slice(end + 2);
      if (event) yield event;
    }
    buffer = text + buffer;
  }
  // an event not closed by a blank line when the stream ends is dropped (as the spec says)
}
