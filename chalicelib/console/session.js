// Who is signed in (GET /api/me), and how the pages show the API's refusals.
import { el } from "./dom.js";

export const session = { me: null, onSignOut: null };

const ARTICLE = (word) => (/^[aeiou]/i.test(word) ? "an" : "a");

/** An honest error state: the API's own message; for 401/403 which key the page needs. */
export function errorBox(error, roles) {
  const box = el("div", { class: "error", role: "alert", "data-status": String(error.status ?? "") });
  const needed = (roles && roles.length) ? roles.join(" or ") : null;
  if (error.status === 401) {
    box.append(el("p", null, `The API did not accept this key (401): ${error.message}`),
      el("p", null, needed ? `This page needs ${ARTICLE(needed)} ${needed} key.` : "Sign in with a valid key."),
      el("button", { type: "button", on: { click: () => session.onSignOut && session.onSignOut() } }, "Sign in again"));
  } else if (error.status === 403) {
    const me = session.me;
    const yours = me ? ` You are signed in with ${ARTICLE(me.role)} ${me.role} key (${me.name}).` : "";
    box.append(el("p", null, `Not allowed (403): ${error.message}`),
      el("p", null, `${needed ? `This needs ${ARTICLE(needed)} ${needed} key.` : ""}${yours}`));
  } else {
    const head = error.status ? `The API answered ${error.status}${error.error ? ` ${error.error}` : ""}: ` : "";
    box.append(el("p", null, head + error.message));
    if (error.problems && error.problems.length) box.append(el("ul", null, error.problems.map((p) => el("li", null, p))));
  }
  return box;
}

/** Fill ``node`` with a loading state, then with what ``load`` builds, or with the error. */
export async function load(node, what, roles, build) {
  node.replaceChildren(el("p", { class: "loading", role: "status" }, `Loading ${what}…`));
  try {
    const content = await build();
    node.replaceChildren(...[content].flat().filter(Boolean));
  } catch (error) {
    if (!(error && "status" in error)) console.error(error);
    node.replaceChildren(errorBox(error, roles));
  }
}

/** Run an action from a form: its button disabled meanwhile; the outcome (or error) shown in ``out``. */
export async function act(button, out, roles, action) {
  button.disabled = true;
  out.replaceChildren(el("p", { class: "loading", role: "status" }, "Working…"));
  try {
    const result = await action();
    out.replaceChildren(...[result].flat().filter(Boolean));
  } catch (error) {
    if (!(error && "status" in error)) console.error(error);
    out.replaceChildren(errorBox(error, roles));
    button.disabled = false;
  }
}
