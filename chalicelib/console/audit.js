// Audit: the trail, newest first, filtered by agent, skill, action and time (in the viewer's zone), in the API's pages.
import { call } from "./api.js";
import { el, field, isoToLocalInput, localInputToIso, status, table, timeCell, viewerZone } from "./dom.js";
import { apiPages } from "./paging.js";

const ROLES = ["admin", "agent"];
const ACTIONS = ["skill.import", "import.step", "skill.execute", "package.check", "package.request", "package.approve",
  "package.ban", "rule.revoke", "request.decide", "skill.approve_code", "scan.ignore", "key.create", "key.revoke",
  "key.rotate", "agent.create", "agent.update", "skill.owner", "inbox.map", "image.remove", "runner.job_refused"];

export function render(page, params) {
  const agent = el("input", { name: "agent_id", value: params.agent_id || "", size: 14 });
  const skill = el("input", { name: "skill_id", value: params.skill_id || "", size: 18 });
  const action = el("input", { name: "action", value: params.action || "", size: 16, list: "audit-actions" });
  const since = el("input", { name: "since", type: "datetime-local", value: isoToLocalInput(params.since) });
  const until = el("input", { name: "until", type: "datetime-local", value: isoToLocalInput(params.until) });
  const list = el("div", { id: "audit-list" });
  const form = el("form", { class: "inline", id: "audit-filters", on: { submit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    const values = { agent_id: agent.value.trim(), skill_id: skill.value.trim(), action: action.value.trim(),
      since: localInputToIso(since.value), until: localInputToIso(until.value) };
    for (const [name, value] of Object.entries(values)) if (value) query.set(name, value);
    if (params.limit) query.set("limit", params.limit);
    const target = `#/audit?${query}`;
    if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
    else window.location.hash = target;
  } } },
  field("agent", agent), field("skill", skill), field("action", action),
  el("datalist", { id: "audit-actions" }, ACTIONS.map((a) => el("option", { value: a }))),
  field(`from (${viewerZone})`, since), field(`to (${viewerZone})`, until), el("button", { type: "submit" }, "Filter"));
  page.replaceChildren(el("h2", null, "Audit"), form, list);
  apiPages(list, {
    what: "audit events", roles: ROLES, emptyText: "No audit event matches these filters.",
    fetchPage: async (token) => {
      const data = await call("GET", "/api/packages/audit", { query: { agent_id: params.agent_id, skill_id: params.skill_id,
        action: params.action, since: params.since, until: params.until, limit: params.limit || 25, next_token: token } });
      return { items: data.events, next_token: data.next_token };
    },
    renderItems: (events) => table(["time", "action", "outcome", "actor", "agent", "skill", "package", "detail"], events.map((e) => [
      timeCell(e.time), el("td", { class: "mono" }, e.action), el("td", null, status(e.outcome)), e.actor, e.agent_id || "—",
      e.skill_id || "—", e.package || "—", el("td", { class: "mono" }, summarize(e.detail))]), { id: "audit-table" }),
  });
}

function summarize(detail) {
  const text = JSON.stringify(detail || {});
  return text.length > 240 ? `${text.slice(0, 240)}…` : text;
}
