// Follow a skill after a decision: the import resumes, and the page shows where it goes.
import { call, seg } from "./api.js";
import { el, status } from "./dom.js";

const SETTLED = new Set(["ready", "blocked", "failed", "removed"]);

/** A line that follows skill ``skillId`` (every second, for up to two minutes) until its import settles. */
export function watchSkill(skillId) {
  const state = el("span", { "data-skill-status": "importing" }, status("importing"));
  const line = el("p", { class: "watch", "data-watch": skillId }, `Skill ${skillId}: `, state);
  let tries = 0;
  const tick = async () => {
    tries += 1;
    try {
      const skill = await call("GET", `/api/skills/${seg(skillId)}`);
      state.dataset.skillStatus = skill.status;
      const parts = [status(skill.status)];
      if (skill.status_reason && skill.status_reason !== skill.status) parts.push(` — ${skill.status_reason}`);
      if (skill.error && skill.error.reason) parts.push(` — ${skill.error.reason}`);
      state.replaceChildren(...parts);
      if (SETTLED.has(skill.status) || skill.status === "pending_approval") return;
    } catch (error) {
      state.replaceChildren(`could not read its status (${error.message})`);
    }
    if (tries < 120) setTimeout(tick, 1000);
    else state.append(" (still not settled; reload the skill later)");
  };
  setTimeout(tick, 300);
  return line;
}
