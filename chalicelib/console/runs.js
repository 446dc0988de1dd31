// Runs: every run that ended, newest first (GET /api/runs, the API's pages), by agent and skill.
import { call, seg } from "./api.js";
import { duration, el, field, status, table, timeCell } from "./dom.js";
import { apiPages } from "./paging.js";

const ROLES = ["admin", "agent"];

export function render(page, params) {
  const agent = el("input", { name: "agent_id", value: params.agent_id || "", size: 16 });
  const skill = el("input", { name: "skill_id", value: params.skill_id || "", size: 20 });
  const list = el("div", { id: "run-list" });
  const form = el("form", { class: "inline", id: "run-filters", on: { submit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (agent.value.trim()) query.set("agent_id", agent.value.trim());
    if (skill.value.trim()) query.set("skill_id", skill.value.trim());
    window.location.hash = `#/runs?${query}`;
  } } }, field("agent", agent), field("skill", skill), el("button", { type: "submit" }, "Filter"));
  page.replaceChildren(el("h2", null, "Runs"), form, list);
  apiPages(list, {
    what: "runs", roles: ROLES, emptyText: "No run has ended yet (with these filters).",
    fetchPage: async (token) => {
      const data = await call("GET", "/api/runs", { query: { agent_id: params.agent_id, skill_id: params.skill_id, limit: 25, next_token: token } });
      return { items: data.runs, next_token: data.next_token };
    },
    renderItems: (runs) => table(["ended", "skill", "agent", "status", "duration", "image", "worker", "job"], runs.map((r) => [
      timeCell(r.ended_at), el("td", null, r.skill_id ? el("a", { href: `#/skills/${seg(r.skill_id)}` }, r.skill_id) : "—"),
      r.agent_id || "—", el("td", null, status(r.status), r.error ? ` — ${r.error}` : ""), duration(r.duration_ms),
      el("td", { class: "mono" }, r.image_tag || "—"), r.worker || "—", el("td", { class: "mono" }, r.job_id || "—")]), { id: "runs-table" }),
  });
}
