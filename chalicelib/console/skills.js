// Skills: every skill's newest version; one skill's versions, pins with hashes, findings, image, SBOM and last runs.
import { call, seg } from "./api.js";
import { duration, el, shortId, status, table, timeCell, when } from "./dom.js";
import { errorBox, load } from "./session.js";
import { arrayPages } from "./paging.js";

export function render(page, params) {
  if (params.id) return renderOne(page, params.id);
  const list = el("div", { id: "skill-list" });
  page.replaceChildren(el("h2", null, "Skills"), list);
  load(list, "skills", null, async () => {
    const { skills } = await call("GET", "/api/skills");
    return arrayPages(skills, 25, (slice) => table(["skill", "name", "newest version", "status", "runs use", "updated"],
      slice.map((s) => [
        el("td", null, el("a", { href: `#/skills/${seg(s.skill_id)}`, "data-skill": s.skill_id }, s.skill_id)),
        s.name || "—", el("td", null, shortId(s.version)), el("td", null, status(s.status)),
        el("td", null, shortId(s.active_version)), timeCell(s.updated_at)]), { id: "skills-table" }),
    "No skill has been imported yet.");
  });
}

function renderOne(page, skillId) {
  const head = el("div");
  const versions = el("div");
  const pins = el("div", null, el("p", { class: "loading" }, "Loading pins…"));
  const findings = el("div", null, el("p", { class: "loading" }, "Loading findings…"));
  const image = el("div");
  const runs = el("div");
  page.replaceChildren(el("p", null, el("a", { href: "#/skills" }, "← all skills")), head,
    el("h3", null, "Versions"), versions, el("h3", null, "Pinned packages"), pins,
    el("h3", null, "Scan findings"), findings, el("h3", null, "Image"), image, el("h3", null, "Last runs"), runs);
  load(head, `skill ${skillId}`, null, async () => {
    const skill = await call("GET", `/api/skills/${seg(skillId)}`);
    pins.replaceChildren(pinTable(skill.pins || []));
    findings.replaceChildren(...[findingList(skill.scan)].flat());
    return summary(skill);
  }).then(() => {
    if (head.querySelector("[data-skill-summary]")) return;
    for (const node of [pins, findings]) node.replaceChildren(el("p", { class: "empty" }, "Not shown: the skill could not be read (see above)."));
  });
  load(versions, "versions", null, async () => {
    const data = await call("GET", `/api/skills/${seg(skillId)}/versions`);
    return arrayPages(data.versions, 10, (slice) => table(["version", "status", "uploaded", "import", "image"],
      slice.map((v) => [el("td", null, shortId(v.version)), el("td", null, status(v.status), v.status_reason && v.status_reason !== v.status ? ` — ${v.status_reason}` : ""),
        timeCell(v.uploaded_at), el("td", { class: "mono" }, v.import_id || "—"), el("td", { class: "mono" }, v.image_tag || "—")]),
    { id: "versions-table" }), "No versions.");
  });
  load(image, "image", null, async () => {
    const info = await call("GET", `/api/packages/${seg(skillId)}/status`);
    if (!info.image_tag) return el("p", { class: "empty" }, "No image yet (it is built by the Install step).");
    return el("dl", { class: "facts" }, el("dt", null, "tag"), el("dd", { class: "mono" }, info.image_tag),
      el("dt", null, "present"), el("dd", null, info.image_exists ? "yes" : "no (removed; rebuilt from the pins on the next run)"),
      el("dt", null, "size"), el("dd", null, info.size_bytes ? `${(info.size_bytes / 1048576).toFixed(1)} MiB` : "—"),
      el("dt", null, "last used"), el("dd", null, when(info.last_used)));
  });
  load(runs, "runs", ["admin", "agent"], async () => {
    const data = await call("GET", "/api/runs", { query: { skill_id: skillId, limit: 5 } });
    if (!data.runs.length) return el("p", { class: "empty" }, "No run of this skill has ended yet.");
    return [table(["ended", "agent", "status", "duration"], data.runs.map((r) => [timeCell(r.ended_at), r.agent_id || "—",
      el("td", null, status(r.status)), duration(r.duration_ms)])), el("p", null, el("a", { href: `#/runs?skill_id=${seg(skillId)}` }, "all runs of this skill →"))];
  });
}

function summary(skill) {
  const sbomOut = el("span");
  const sbom = el("button", { type: "button", "data-action": "sbom", on: { click: () => downloadSbom(skill.skill_id, sbom, sbomOut) } }, "Download SBOM (CycloneDX)");
  const facts = [["skill id", skill.skill_id], ["version", skill.version], ["runs use", skill.active_version || "no ready version"],
    ["type", skill.skill_type], ["owner", skill.owner], ["uploaded", when(skill.uploaded_at)], ["updated", when(skill.updated_at)]];
  const dl = el("dl", { class: "facts" }, facts.filter(([, v]) => v).map(([k, v]) => [el("dt", null, k), el("dd", null, v)]),
    el("dt", null, "status"), el("dd", null, status(skill.status), skill.status_reason && skill.status_reason !== skill.status ? ` — ${skill.status_reason}` : ""));
  const parts = [el("h2", { "data-skill-summary": skill.skill_id }, skill.name || skill.skill_id), el("p", null, skill.description || ""), dl];
  if (skill.error && skill.error.reason) parts.push(el("p", { class: "error" }, `${skill.error.step} step: ${skill.error.reason}`));
  parts.push(el("p", null, sbom, " ", sbomOut));
  return parts;
}

async function downloadSbom(skillId, button, out) {
  button.disabled = true;
  try {
    const document_ = await call("GET", `/api/skills/${seg(skillId)}/sbom`);
    const blob = new Blob([JSON.stringify(document_, null, 2)], { type: "application/vnd.cyclonedx+json" });
    const link = el("a", { href: URL.createObjectURL(blob), download: `${skillId}.cdx.json` });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    out.replaceChildren("downloaded");
  } catch (error) {
    out.replaceChildren(errorBox(error, null));
  } finally {
    button.disabled = false;
  }
}

function pinTable(pins) {
  if (!pins.length) return el("p", { class: "empty" }, "No packages (standard library only), or not resolved yet.");
  return table(["package", "version", "direct", "sha256"], pins.map((p) => [el("td", { class: "mono" }, p.name),
    el("td", { class: "mono" }, p.version), p.direct ? "yes" : "", el("td", { class: "mono" }, p.sha256)]), { id: "pins-table" });
}

function findingList(scan) {
  if (!scan) return el("p", { class: "empty" }, "Not scanned yet.");
  const items = [];
  for (const v of scan.findings || []) items.push(el("li", null, el("code", null, v.id), ` ${v.package} ${v.version}`, v.fixed_in ? ` — fixed in ${v.fixed_in}` : " — no fix known", v.summary ? `: ${v.summary}` : ""));
  for (const u of scan.unaudited || []) items.push(el("li", null, `${u.package} ${u.version} could not be audited: ${u.reason}`));
  for (const t of scan.typosquats || []) items.push(el("li", null, `${t.name}: looks like ${t.target} (${t.kind})`));
  for (const f of scan.code_findings || []) items.push(el("li", null, el("code", null, `${f.file}:${f.line}`), ` ${f.test_id} ${f.severity}: ${f.message}`));
  const parts = [el("p", null, "scan: ", status(scan.status), scan.code_approval ? ` — code approved by ${scan.code_approval.approved_by || "an admin"}` : "")];
  parts.push(items.length ? el("ul", { class: "findings" }, items) : el("p", { class: "empty" }, "No findings."));
  return parts;
}
