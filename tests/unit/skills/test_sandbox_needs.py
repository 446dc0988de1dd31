"""Non-Python needs: what the sandbox lacks is shown as such, and missing_binaries explains exit 127."""

from __future__ import annotations

import json

from chalicelib.skills import parse_skill_md
from chalicelib.skills.needs import NOT_AVAILABLE, base_image_bins, missing_binaries, sandbox_needs

METADATA = {"openclaw": {
    "requires": {"bins": ["bash", "jq"], "anyBins": ["python3", "python"], "env": ["TRELLO_API_KEY"],
                 "config": ["channels.discord.token"]},
    "install": [{"id": "brew", "kind": "brew", "formula": "jq", "bins": ["jq"]},
                {"kind": "node", "package": "some-cli"}, {"kind": "go", "module": "example.com/x@latest"},
                {"kind": "download", "url": "https://example.com/tool.tar.gz"}],
}}  # fmt: skip
SKILL = f"---\nname: Trello\ndescription: Cards\nmetadata: {json.dumps(METADATA)}\n---\nUse it.\n".encode()


def needs(**kwargs):
    skill = parse_skill_md(SKILL)
    return skill, sandbox_needs([n.model_dump() for n in skill.non_python_requirements], python_version="3.11", **kwargs)


def test_the_base_image_list_was_read_from_the_image() -> None:
    assert {"bash", "sh", "python3"} <= base_image_bins()


def test_each_need_has_a_status_and_a_reason() -> None:
    _, shown = needs()
    status = {(n["kind"], n["spec"]): n["status"] for n in shown}
    assert status[("bin", "bash")] == "available"
    assert status[("bin", "python3 | python")] == "available"
    for key in [("bin", "jq"), ("env", "TRELLO_API_KEY"), ("config", "channels.discord.token"), ("brew", "jq"),
                ("node", "some-cli"), ("go", "example.com/x@latest"), ("download", "https://example.com/tool.tar.gz")]:
        assert status[key] == NOT_AVAILABLE == "not available in this sandbox", key
    reasons = {n["spec"]: n["reason"] for n in shown}
    assert reasons["jq"] == "jq is not in the base image" and "Python wheels only" in reasons["some-cli"]


def test_python_constraints_are_checked_against_the_sandbox_python() -> None:
    shown = sandbox_needs([{"kind": "python", "spec": ">=3.11"}, {"kind": "python", "spec": ">=3.12"}],
                          python_version="3.11")  # fmt: skip
    assert [n["status"] for n in shown] == ["available", NOT_AVAILABLE]


def test_missing_binaries_names_the_command_and_the_declared_bins_the_image_lacks() -> None:
    skill, _ = needs()
    record = skill.to_record()
    assert missing_binaries(record, ["ffmpeg", "-i", "x"]) == ["ffmpeg", "jq"]
    assert missing_binaries(record, ["bash", "scripts/run.sh"]) == ["jq"]
    assert missing_binaries(record, ["./scripts/run.sh"]) == ["jq"]  # a path is the skill's own file
    assert missing_binaries({}, ["python3", "x.py"]) == []
    assert missing_binaries({}, ["python", "x.py"], bins=frozenset({"python3"})) == ["python"]
