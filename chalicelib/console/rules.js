// Rules: package approvals and bans (revoke), and advisory ignores.
import { call, seg } from "./api.js";
import { el, field, notice, table, timeCell, when } from "./dom.js";
import { act, load } from "./session.js";
import { arrayPages } from "./paging.js";

const ADMIN = ["admin"];
const MATURITIES = ["INTERN", "SUPERVISED", "AUTONOMOUS"];

export function render(page) {
  const rules = el("div", { id: "rule-list" });
  const ignores = el("div", { id: "ignore-list" });
  const refresh = () => render(page);
  page.replaceChildren(el("h2", null, "Rules"), el("h3", null, "Approvals and bans"), ruleForms(refresh), rules,
    el("h3", null, "Advisory ignores"), ignoreForm(refresh), ignores);
  load(rules, "rules", ["admin", "publisher"], async () => {
    const data = await call("GET", "/api/packages/rules");
    return arrayPages(data.rules, 25, (slice) => table(["kind", "package", "versions", "maturity / reason", "by", "since", ""],
      slice.map((r) => [r.kind, el("td", { class: "mono" }, r.package), el("td", { class: "mono" }, r.specifier || "all"),
        r.kind === "approval" ? `${r.min_maturity} and up` : r.reason, r.created_by, timeCell(r.created_at), revokeCell(r, refresh)]),
      { id: "rules-table" }), "No approval or ban yet: every package is denied until approved.");
  });
  load(ignores, "advisory ignores", ["admin", "publisher"], async () => {
    const data = await call("GET", "/api/packages/ignores");
    return arrayPages(data.ignores, 25, (slice) => table(["advisory", "package", "reason", "expires", "by"],
      slice.map((i) => [el("td", { class: "mono" }, i.advisory_id), i.package || "every package", i.reason, timeCell(i.expires_at), i.created_by])),
    "No advisory is ignored.");
  });
}

function revokeCell(rule, refresh) {
  const out = el("span");
  const button = el("button", { type: "button", "data-revoke": rule.rule_id, on: { click: () => {
    act(button, out, ADMIN, async () => {
      await call("DELETE", `/api/packages/rules/${seg(rule.rule_id)}`);
      setTimeout(refresh, 600);
      return notice("revoked");
    });
  } } }, "Revoke");
  return el("td", null, button, out);
}

function ruleForms(refresh) {
  const out = el("div");
  const pkg = el("input", { name: "package_name", size: 18, required: true });
  const spec = el("input", { name: "version", size: 14, placeholder: "all versions" });
  const maturity = el("select", { name: "min_maturity" }, MATURITIES.map((m) => el("option", { value: m }, m)));
  const approve = el("button", { type: "submit" }, "Approve");
  const bpkg = el("input", { name: "ban_package", size: 18, required: true });
  const bspec = el("input", { name: "ban_version", size: 14, placeholder: "all versions" });
  const breason = el("input", { name: "ban_reason", size: 30, required: true });
  const ban = el("button", { type: "submit" }, "Ban");
  const done = (text) => { setTimeout(refresh, 900); return notice(text); };
  return el("div", null,
    el("form", { class: "inline", id: "approve-form", on: { submit: (event) => { event.preventDefault(); act(approve, out, ADMIN, async () => {
      const rule = await call("POST", "/api/packages/approve", { body: { package_name: pkg.value.trim(), version: spec.value.trim(), min_maturity: maturity.value } });
      return done(`Approved ${rule.package} ${rule.specifier || "(all versions)"} for ${rule.min_maturity} and up` +
        (rule.resumed_imports.length ? `; resumed ${rule.resumed_imports.join(", ")}` : ""));
    }); } } }, field("package", pkg), field("versions", spec), field("minimum maturity", maturity), approve),
    el("form", { class: "inline", id: "ban-form", on: { submit: (event) => { event.preventDefault(); act(ban, out, ADMIN, async () => {
      const rule = await call("POST", "/api/packages/ban", { body: { package_name: bpkg.value.trim(), version: bspec.value.trim(), reason: breason.value } });
      return done(`Banned ${rule.package} ${rule.specifier || "(all versions)"}`);
    }); } } }, field("package", bpkg), field("versions", bspec), field("reason", breason), ban),
    out);
}

function ignoreForm(refresh) {
  const out = el("div");
  const advisory = el("input", { name: "advisory_id", size: 20, required: true, placeholder: "PYSEC-… or GHSA-…" });
  const pkg = el("input", { name: "ignore_package", size: 16, placeholder: "every package" });
  const reason = el("input", { name: "ignore_reason", size: 30, required: true });
  const expires = el("input", { name: "expires_at", type: "date", required: true });
  const button = el("button", { type: "submit" }, "Ignore until then");
  return el("div", null, el("form", { class: "inline", id: "ignore-form", on: { submit: (event) => { event.preventDefault(); act(button, out, ADMIN, async () => {
    const ignore = await call("POST", "/api/packages/ignores", { body: { advisory_id: advisory.value.trim(), package: pkg.value.trim() || undefined,
      reason: reason.value, expires_at: expires.value } });
    setTimeout(refresh, 900);
    return notice(`Ignoring ${ignore.advisory_id} until ${when(ignore.expires_at)}`);
  }); } } }, field("advisory", advisory), field("package", pkg), field("reason", reason), field("expires", expires), button), out);
}
