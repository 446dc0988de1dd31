"""Skill owners, inbox folders, key rotation and health, as a user meets them through the CLI."""

from __future__ import annotations

import json
from pathlib import Path


def _skill_md(name: str, greeting: str = "Hello") -> str:
    return f"---\nname: {name}\ndescription: Greets.\n---\n# {name}\n\n{greeting} {{who}}.\n"


def _key(run_cli, *args: str) -> dict:
    return json.loads(run_cli("keys", "create", *args, "--json").stdout)


def test_a_publisher_cannot_import_over_another_publishers_skill(run_cli, unique, tmp_path: Path):
    name = unique("greeter")
    alice, mallory = _key(run_cli, "--role", "publisher", "--name", "alice"), _key(run_cli, "--role", "publisher", "--name", "mallory")
    path = tmp_path / "SKILL.md"
    path.write_text(_skill_md(name))
    run_cli("import", str(path), SKILLHARBOR_API_KEY=alice["api_key"])
    path.write_text(_skill_md(name, "Howdy,"))  # another version; its text is not the point
    refused = run_cli("import", str(path), expect=1, SKILLHARBOR_API_KEY=mallory["api_key"])
    assert "only its owner or an admin may publish new versions" in refused.stderr
    assert alice["key_id"] not in refused.stderr + refused.stdout
    assert "alice" not in refused.stderr
    owner = json.loads(run_cli("skills", "owner", name, "--json").stdout)
    assert owner["owner"] == f"key:{alice['key_id']}" and owner["via"] == "first_publish"
    run_cli("skills", "owner", name, expect=1, SKILLHARBOR_API_KEY=mallory["api_key"])  # admins only
    moved = json.loads(run_cli("skills", "transfer", name, "--to", f"key:{mallory['key_id']}", "--json").stdout)
    assert moved["previous_owner"] == f"key:{alice['key_id']}"
    run_cli("import", str(path), SKILLHARBOR_API_KEY=mallory["api_key"])
    shown = json.loads(run_cli("skills", "show", name, "--json", SKILLHARBOR_API_KEY=mallory["api_key"]).stdout)
    assert shown["owner"] == f"key:{mallory['key_id']}" and shown["active_version"] == shown["version"]


def test_team_keys_share_their_skills(run_cli, unique, tmp_path: Path):
    team, name = unique("team"), unique("shared")
    first, second = (_key(run_cli, "--role", "publisher", "--name", n, "--team", team) for n in ("ci-1", "ci-2"))
    assert first["owner"] == second["owner"] == f"team:{team}"
    path = tmp_path / "SKILL.md"
    path.write_text(_skill_md(name))
    run_cli("import", str(path), SKILLHARBOR_API_KEY=first["api_key"])
    path.write_text(_skill_md(name, "Hi"))
    run_cli("import", str(path), SKILLHARBOR_API_KEY=second["api_key"])


def test_inbox_folders_map_list_and_unmap_and_an_unmapped_upload_is_refused_at_once(run_cli, unique, tmp_path: Path):
    folder, name = unique("drop") + "/", unique("dropped")
    mapped = run_cli("inbox", "map", folder, "--owner", "team:droppers")
    assert f"uploads under {folder} publish as team:droppers" in mapped.stdout
    assert any(m["prefix"] == folder for m in json.loads(run_cli("inbox", "list", "--json").stdout)["prefixes"])
    path = tmp_path / "SKILL.md"
    path.write_text(_skill_md(name))
    assert "is ready" in run_cli("import", "--s3", "--prefix", folder, str(path)).stdout
    run_cli("inbox", "unmap", folder)
    refused = run_cli("import", "--s3", "--prefix", folder, str(path), expect=1)
    assert "failed at step inbox" in refused.stderr and "not mapped to an owner" in refused.stderr
    run_cli("inbox", "unmap", folder, expect=1)  # not mapped any more
    run_cli("inbox", "map", "no-trailing-slash", "--owner", "team:x", expect=1)


def test_an_agent_rotates_its_own_key_and_an_admin_rotates_an_agents(run_cli, unique):
    agent_id = unique("bot")
    created = json.loads(run_cli("agents", "create", agent_id, "--json").stdout)
    rotated = run_cli("keys", "rotate", SKILLHARBOR_API_KEY=created["api_key"])
    new_key = next(line.split()[-1] for line in rotated.stdout.splitlines() if "api key (shown once)" in line)
    assert "the key you used is now revoked" in rotated.stdout
    failed = run_cli("agents", "show", agent_id, expect=1, SKILLHARBOR_API_KEY=created["api_key"])
    assert "revoked" in failed.stderr
    run_cli("agents", "show", agent_id, SKILLHARBOR_API_KEY=new_key)
    by_admin = json.loads(run_cli("keys", "rotate", "--agent", agent_id, "--json").stdout)
    run_cli("agents", "show", agent_id, SKILLHARBOR_API_KEY=by_admin["api_key"])
    run_cli("agents", "show", agent_id, expect=1, SKILLHARBOR_API_KEY=new_key)
    listed = json.loads(run_cli("keys", "list", "--agent", agent_id, "--json").stdout)["keys"]
    assert sorted(k["revoked_at"] is None for k in listed) == [False, False, True]
    run_cli("keys", "revoke", by_admin["key_id"])
    none_left = run_cli("keys", "rotate", "--agent", agent_id, expect=1)
    assert "has no active key" in none_left.stderr and "keys create --role agent" in none_left.stderr
    again = json.loads(run_cli("keys", "create", "--role", "agent", "--agent", agent_id, "--name", "again", "--json").stdout)
    run_cli("agents", "show", agent_id, SKILLHARBOR_API_KEY=again["api_key"])


def test_health_without_an_admin_key_says_only_ok(run_cli):
    result = run_cli("health", SKILLHARBOR_API_KEY=None)
    assert result.stdout.strip() == "stack: ok"
    assert "dynamodb" not in result.output and "shown to admin keys" in result.stderr


def test_an_admin_rescans_ready_skills_from_the_cli(run_cli, unique, tmp_path: Path):
    name = unique("rescanned")
    path = tmp_path / "SKILL.md"
    path.write_text(_skill_md(name))
    run_cli("import", str(path))
    outcome = json.loads(run_cli("skills", "rescan", "--force", "--limit", "500", "--json").stdout)
    assert outcome["rescanned"] >= 1 and outcome["basis"].startswith("rules:") and outcome["blocked"] == []
    assert "rescanned" in run_cli("skills", "rescan").stdout
    publisher = _key(run_cli, "--role", "publisher", "--name", "not-an-admin")
    run_cli("skills", "rescan", expect=1, SKILLHARBOR_API_KEY=publisher["api_key"])
