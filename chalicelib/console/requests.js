// Requests: what waits for an admin. Package approval requests (filed by imports or agents), and skill
// versions blocked by their scan: code findings an admin may approve, known vulnerabilities with fix versions.
import { call, seg } from "./api.js";
import { el, field, notice, shortId, when } from "./dom.js";
import { act, load } from "./session.js";
import { arrayPages } from "./paging.js";
import { watchSkill } from "./watch.js";

const ADMIN = ["admin"];
const MATURITIES = ["INTERN", "SUPERVISED", "AUTONOMOUS"];
const BLOCKED_DETAIL_LIMIT = 25; // blocked skills whose details are read for this page

export function render(page) {
  const packages = el("div", { id: "package-requests" });
  const code = el("div", { id: "code-approvals" });
  page.replaceChildren(
    el("h2", null, "Requests"),
    el("h3", null, "Package approvals"),
    el("p", { class: "muted" }, "Imports wait at the Check step until each package they need is approved; approving resumes them."),
    packages,
    el("h3", null, "Blocked by the scan"),
    el("p", { class: "muted" }, "Versions whose code has HIGH findings wait for a code approval; versions with known vulnerabilities need a fixed version (or an advisory ignore, on the Rules page)."),
    code,
  );
  load(packages, "pending package requests", ADMIN, async () => {
    const { requests } = await call("GET", "/api/packages/requests", { query: { status: "pending" } });
    return arrayPages(requests, 20, (slice) => el("div", null, slice.map(requestCard)), "No package approval is waiting.");
  });
  load(code, "blocked skills", ADMIN, blockedSkills);
}

function requestCard(request) {
  const exact = /^[0-9]/.test(request.version) ? `==${request.version}` : request.version;
  const maturity = el("select", { name: "min_maturity" }, MATURITIES.map((m) => el("option", { value: m }, m)));
  const specifier = el("input", { name: "specifier", value: exact, size: 14, placeholder: "all versions" });
  const reason = el("input", { name: "reason", size: 40, placeholder: "why not (shown to the publisher)" });
  const out = el("div", { class: "outcome" });
  const approve = el("button", { type: "submit", "data-action": "approve" }, "Approve");
  const reject = el("button", { type: "submit", "data-action": "reject" }, "Reject");
  const approveForm = el("form", { class: "inline", on: { submit: (event) => {
    event.preventDefault();
    act(approve, out, ADMIN, async () => {
      const result = await call("POST", "/api/packages/approve",
        { body: { package_name: request.package, version: specifier.value.trim(), min_maturity: maturity.value } });
      reject.disabled = true;
      const parts = [notice(`Approved ${result.package} ${result.specifier || "(all versions)"} for ${result.min_maturity} and up.` +
        (result.resumed_imports.length ? ` Resumed import ${result.resumed_imports.join(", ")}.` : " No import was waiting for it alone."))];
      if (request.skill_id) parts.push(watchSkill(request.skill_id));
      return parts;
    });
  } } }, field("minimum maturity", maturity), field("versions (PEP 440)", specifier), approve);
  const rejectForm = el("form", { class: "inline", on: { submit: (event) => {
    event.preventDefault();
    act(reject, out, ADMIN, async () => {
      const result = await call("POST", `/api/packages/requests/${seg(request.request_id)}/reject`, { body: { reason: reason.value } });
      approve.disabled = true;
      const parts = [notice(`Rejected ${result.package} ${result.version}.` +
        (result.blocked_imports.length ? ` Import ${result.blocked_imports.join(", ")} is now blocked.` : ""))];
      if (request.skill_id) parts.push(watchSkill(request.skill_id));
      return parts;
    });
  } } }, field("reason", reason), reject);
  return el("div", { class: "card", "data-request": request.request_id, "data-package": request.package },
    el("h4", null, el("code", null, request.package), " ", el("span", { class: "mono" }, request.version || "(any version)")),
    el("dl", { class: "facts" },
      el("dt", null, "skill"), el("dd", null, request.skill_id ? el("a", { href: `#/skills/${seg(request.skill_id)}` }, request.skill_id) : "—"),
      el("dt", null, "requested by"), el("dd", null, request.requested_by + (request.agent_id ? ` (agent ${request.agent_id})` : "")),
      el("dt", null, "why"), el("dd", null, request.reason || "—"),
      el("dt", null, "asked"), el("dd", { title: request.created_at }, when(request.created_at))),
    approveForm, rejectForm, out);
}

async function blockedSkills() {
  const { skills } = await call("GET", "/api/skills");
  const blocked = skills.filter((s) => s.status === "blocked");
  if (!blocked.length) return el("p", { class: "empty" }, "No skill is blocked by its scan.");
  const details = await Promise.all(blocked.slice(0, BLOCKED_DETAIL_LIMIT).map((s) => call("GET", `/api/skills/${seg(s.skill_id)}`)));
  const cards = details.filter((d) => (d.error || {}).step === "scan").map(blockedCard);
  const parts = [cards.length ? el("div", null, cards) : el("p", { class: "empty" }, "No skill is blocked by its scan.")];
  if (blocked.length > BLOCKED_DETAIL_LIMIT) {
    parts.push(el("p", { class: "muted" }, `Showing the first ${BLOCKED_DETAIL_LIMIT} of ${blocked.length} blocked skills; the Skills page lists them all.`));
  }
  return parts;
}

function blockedCard(skill) {
  const scan = skill.scan || {};
  const highCode = (scan.code_findings || []).filter((f) => f.severity === "HIGH");
  const vulns = scan.findings || [];
  const card = el("div", { class: "card", "data-blocked-skill": skill.skill_id },
    el("h4", null, el("a", { href: `#/skills/${seg(skill.skill_id)}` }, skill.name || skill.skill_id), " ",
      shortId(skill.version)),
    el("p", null, skill.error.reason));
  if (vulns.length) {
    card.append(el("p", null, "Known vulnerabilities:"), el("ul", { class: "findings" }, vulns.map((v) => el("li", null,
      el("code", null, v.id), ` in ${v.package} ${v.version}`, v.aliases && v.aliases.length ? ` (${v.aliases.join(", ")})` : "",
      v.fixed_in ? ` — fixed in ${v.fixed_in}` : " — no fixed version known", v.summary ? `: ${v.summary}` : ""))));
  }
  if (highCode.length && !scan.code_approval) {
    const reason = el("input", { name: "reason", size: 40, required: true, placeholder: "what you reviewed" });
    const out = el("div", { class: "outcome" });
    const button = el("button", { type: "submit", "data-action": "approve-code" }, "Approve this code");
    card.append(el("p", null, "Code findings (HIGH):"), el("ul", { class: "findings" }, highCode.map((f) => el("li", null,
      el("code", null, `${f.file}:${f.line}`), ` ${f.test_id}: ${f.message}`))),
    el("form", { class: "inline", on: { submit: (event) => {
      event.preventDefault();
      act(button, out, ADMIN, async () => {
        const result = await call("POST", `/api/skills/${seg(skill.skill_id)}/approve-code`, { body: { reason: reason.value, version: skill.version } });
        return [notice(`Code of ${skill.skill_id} ${skill.version} approved.` + (result.resumed_import ? ` Resumed import ${result.resumed_import}.` : "")),
          result.resumed_import ? watchSkill(skill.skill_id) : null];
      });
    } } }, field("reason", reason), button), out);
  }
  return card;
}
