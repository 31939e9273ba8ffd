// Small DOM helpers. Text from the model or the corpus only ever becomes text nodes
// (never parsed as HTML), so no markup in it is ever rendered.

/** el("p", {class: "x", dir: "auto"}, "text", child, ...) */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

const RTL = new Set(["ar", "arc", "ckb", "dv", "fa", "he", "ks", "ps", "sd", "ug", "ur", "yi"]);

/** The dir attribute for text in `lang`: rtl for right-to-left scripts, else auto. */
export function direction(lang) {
  return RTL.has(String(lang || "").toLowerCase()) ? "rtl" : "auto";
}

const names = (() => {
  try {
    return new Intl.DisplayNames(["en"], { type: "language" });
  } catch {
    return null;
  }
})();

/** "Arabic" for "ar"; the code itself when the browser has no name for it. */
export function languageName(lang) {
  if (!lang || lang === "und") return "language unknown";
  try {
    return (names && names.of(lang)) || lang;
  } catch {
    return lang;
  }
}

/** "line 7" or "lines 7-9". */
export function lines(start, end) {
  return start === end ? `line ${start}` : `lines ${start}-${end}`;
}
