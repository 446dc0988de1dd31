// The console's shell: sign-in (the key stays in sessionStorage), the navigation, and the hash router.
import { ApiError, call, forgetKey, saveKey, savedKey } from "./api.js";
import { el, viewerZone } from "./dom.js";
import { errorBox, session } from "./session.js";
import * as audit from "./audit.js";
import * as requests from "./requests.js";
import * as rules from "./rules.js";
import * as runs from "./runs.js";
import * as skills from "./skills.js";

const PAGES = { requests, skills, runs, audit, rules };
const $ = (id) => document.getElementById(id);

function route() {
  const hash = window.location.hash.replace(/^#\/?/, "");
  const [path, queryText] = hash.split("?");
  const [name, ...rest] = (path || "requests").split("/");
  const params = Object.fromEntries(new URLSearchParams(queryText || ""));
  if (rest.length) params.id = decodeURIComponent(rest.join("/"));
  return { name: PAGES[name] ? name : "requests", params };
}

function show() {
  if (!session.me) return;
  const { name, params } = route();
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("current", link.dataset.page === name);
  const page = $("page");
  page.dataset.page = name;
  PAGES[name].render(page, params);
}

function signedOut(message) {
  session.me = null;
  forgetKey();
  $("nav").hidden = true;
  $("who").replaceChildren();
  $("page").replaceChildren();
  $("login").hidden = false;
  const note = $("login-error");
  note.hidden = !message;
  note.textContent = message || "";
  $("key").value = "";
  $("key").focus();
}

async function signIn() {
  try {
    session.me = await call("GET", "/api/me");
  } catch (error) {
    const text = error instanceof ApiError && error.status === 401
      ? `That key was not accepted: ${error.message}`
      : `Could not sign in: ${error.message}`;
    signedOut(text);
    return;
  }
  $("login").hidden = true;
  $("nav").hidden = false;
  const me = session.me;
  $("who").replaceChildren(el("span", { id: "whoami" }, `${me.role} key ${me.name}${me.agent_id ? ` (agent ${me.agent_id})` : ""}`),
    el("span", { class: "muted" }, ` · times in ${viewerZone}`),
    el("button", { type: "button", id: "sign-out", on: { click: () => signedOut("") } }, "Sign out"));
  show();
}

session.onSignOut = () => signedOut("Sign in again with a valid key.");

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  saveKey(key);
  $("key").value = "";
  signIn();
});
window.addEventListener("hashchange", show);
window.addEventListener("unhandledrejection", (event) => {
  const page = $("page");
  if (event.reason && "status" in event.reason) page.prepend(errorBox(event.reason, null));
});

if (savedKey()) signIn(); else signedOut("");
