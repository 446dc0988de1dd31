"""Every setting is listed in .env.example with its default, so the docs stay true."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def _documented() -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE)}


def test_every_setting_is_in_env_example():
    documented = _documented()
    missing = []
    for name, field in Settings.model_fields.items():
        names = {f"SKILLHARBOR_{name.upper()}"}
        if field.validation_alias is not None:
            names |= set(field.validation_alias.choices)
        if not names & documented:
            missing.append(name)
    assert not missing, f".env.example lacks: {missing}"


def test_env_example_names_no_unknown_setting():
    known = {f"SKILLHARBOR_{n.upper()}" for n in Settings.model_fields}
    for field in Settings.model_fields.values():
        if field.validation_alias is not None:
            known |= set(field.validation_alias.choices)
    local_stack = {"SKILLHARBOR_MOTO_PORT", "SKILLHARBOR_API_PORT", "SKILLHARBOR_RUNNER_PORT", "SKILLHARBOR_LOCAL_HOST",
                   "SKILLHARBOR_LOCAL_SCHEDULE_SECONDS", "SKILLHARBOR_LOCAL_WORKERS", "SKILLHARBOR_LOCAL_REGISTRY",
                   "SKILLHARBOR_LOCAL_REGISTRY_PORT", "SKILLHARBOR_LOCAL_AWS_IN_PROCESS"}
    assert _documented() - known - local_stack == set()
