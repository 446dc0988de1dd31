// Building the page. Every value goes in as text (textContent / text nodes), never as HTML:
// names, descriptions and findings come from skills, and a skill may be hostile.

/** el("td", {class: "x", title: "y"}, "text", otherNode, ...): an element with text or element children. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name === "value" || name === "checked" || name === "disabled" || name === "hidden" || name === "selected") {
      node[name] = value;
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) { node.replaceChildren(); return node; }

/** An ISO time in the viewer's own time zone. */
export function when(iso) {
  if (!iso) return "—";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return String(iso);
  return moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function timeCell(iso) { return el("td", { title: iso || "" }, when(iso)); }

export const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function status(word) {
  const text = word || "—";
  return el("span", { class: `status status-${String(text).replace(/[^a-z_]/gi, "")}`, "data-status": text }, text);
}

export function loading(what) { return el("p", { class: "loading", role: "status" }, `Loading ${what}…`); }
export function empty(text) { return el("p", { class: "empty" }, text); }
export function notice(text) { return el("p", { class: "notice", role: "status" }, text); }

/** A table: headings, then rows of cells (a cell is a node, or a value shown as text). */
export function table(headings, rows, attrs) {
  return el("table", attrs,
    el("thead", null, el("tr", null, headings.map((h) => el("th", null, h)))),
    el("tbody", null, rows.map((cells) => el("tr", null, cells.map((c) => (c instanceof HTMLTableCellElement ? c : el("td", null, c)))))));
}

export function field(label, input) { return el("label", null, label, input); }

export function duration(ms) {
  if (ms === undefined || ms === null) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The local time a datetime-local input holds, as ISO UTC (the API's form); "" when empty. */
export function localInputToIso(value) {
  if (!value) return "";
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? "" : moment.toISOString();
}

/** An ISO time as a datetime-local input's value, in the viewer's zone. */
export function isoToLocalInput(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}T${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
}

/** A long id (a version is a 64-digit content hash) shortened, the whole of it in the tooltip. */
export function shortId(value, length = 12) {
  if (!value) return "—";
  const text = String(value);
  return el("span", { class: "mono", title: text }, text.length > length + 1 ? `${text.slice(0, length)}…` : text);
}
