// Lists in pages: the API's own pages (next_token), or a list the API returns whole, shown a page at a time.
import { el } from "./dom.js";
import { errorBox } from "./session.js";

/** API pagination: fetchPage(token) → {items, next_token}; renderItems(items) → a node. Newer/Older walk the pages. */
export function apiPages(node, { what, roles, fetchPage, renderItems, emptyText }) {
  const tokens = [null]; // tokens[i] reads page i
  let index = 0;
  const show = async () => {
    node.replaceChildren(el("p", { class: "loading", role: "status" }, `Loading ${what}…`));
    let page;
    try {
      page = await fetchPage(tokens[index]);
    } catch (error) {
      node.replaceChildren(errorBox(error, roles));
      return;
    }
    if (page.next_token && tokens.length === index + 1) tokens.push(page.next_token);
    const newer = el("button", { type: "button", disabled: index === 0, "data-pager": "newer",
      on: { click: () => { index -= 1; show(); } } }, "← Newer");
    const older = el("button", { type: "button", disabled: !page.next_token, "data-pager": "older",
      on: { click: () => { index += 1; show(); } } }, "Older →");
    const body = page.items.length ? renderItems(page.items) : el("p", { class: "empty" }, index ? "No more entries." : emptyText);
    node.replaceChildren(body, el("div", { class: "pager" }, newer, el("span", { class: "muted" }, `page ${index + 1}`), older));
  };
  show();
}

/** A list the API answers whole, shown ``size`` items at a time. */
export function arrayPages(items, size, renderItems, emptyText) {
  const holder = el("div");
  let index = 0;
  const pages = Math.max(1, Math.ceil(items.length / size));
  const show = () => {
    if (!items.length) { holder.replaceChildren(el("p", { class: "empty" }, emptyText)); return; }
    const slice = items.slice(index * size, (index + 1) * size);
    const parts = [renderItems(slice)];
    if (pages > 1) {
      parts.push(el("div", { class: "pager" },
        el("button", { type: "button", disabled: index === 0, on: { click: () => { index -= 1; show(); } } }, "← Previous"),
        el("span", { class: "muted" }, `page ${index + 1} of ${pages} (${items.length} in all)`),
        el("button", { type: "button", disabled: index >= pages - 1, on: { click: () => { index += 1; show(); } } }, "Next →")));
    }
    holder.replaceChildren(...parts);
  };
  show();
  return holder;
}
