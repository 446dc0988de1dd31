"""Issue 11 item 2: no requirement can make the resolver run a planted project's build backend.

A project folder and archives are planted whose build backend writes a marker file when pip
so much as asks it for metadata. The control test shows pip does run it when handed the path
(``--only-binary=:all:`` does not stop that), so the marker is a real detector. Then every
spelling of a path, URL or archive goes through each public way in (pre-flight scan, seed
install, API import of a SKILL.md and of a zip's requirements.txt) and, past those, straight
to the resolver as a stored record would: all refused, and the marker never appears.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from chalice.test import Client

from api_support import Api, skill_md, skill_zip

BACKEND = """\
import pathlib
pathlib.Path({marker!r}).write_text("the planted build backend ran")
def get_requires_for_build_wheel(config_settings=None):
    return []
def prepare_metadata_for_build_wheel(directory, config_settings=None):
    raise SystemExit("planted")
def build_wheel(directory, config_settings=None, metadata_directory=None):
    raise SystemExit("planted")
"""
PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "evil_backend"\nbackend-path = ["."]\n[project]\nname = "evil"\nversion = "1.0"\n'


@pytest.fixture
def plant(tmp_path: Path) -> dict[str, Path]:
    marker = tmp_path / "MARKER"
    project = tmp_path / "plant" / "evil"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "evil_backend.py").write_text(BACKEND.format(marker=str(marker)))
    sdist = tmp_path / "plant" / "evil-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(project, arcname="evil-1.0")
    zipped = tmp_path / "plant" / "evil-1.0.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for file in project.iterdir():
            archive.write(file, f"evil-1.0/{file.name}")
    return {"marker": marker, "project": project, "sdist": sdist, "zip": zipped}


def spellings(plant: dict[str, Path]) -> list[str]:
    project, sdist, zipped = str(plant["project"]), str(plant["sdist"]), str(plant["zip"])
    up = "../" * 12  # from any working directory, far enough up to reach /
    return [
        project, project + "/", sdist, zipped, f"file://{project}", f"file:{project}", f"FILE://{sdist}",
        f"evil @ file://{project}", f"evil@{project}", f"evil @ {project}", f"evil[x] @ {sdist}",
        f"numpy===@/../../../..{project}", f"numpy===@{project}", f"numpy === @ {project}", f"numpy==1.0 @ {sdist}",
        f"numpy===@{up}{project.lstrip('/')}", up + project.lstrip("/"), "./" + up + project.lstrip("/"),
        "~/" + up + project.lstrip("/"), "~root/../" + project.lstrip("/"), project.replace("/", "\\"),
        "C:" + project, "evil-1.0.tar.gz", "evil-1.0.zip", "evil-1.0-py3-none-any.whl", "evil.tgz", "evil.tar",
        "numpy==1.0+evil.tar.gz", "numpy===1.0+local.zip", "numpy[evil.zip]", f"numpy; python_version > '3' @ {project}",
        f"numpy; python_version > '3'\u2028{project}", f"numpy\u0085{sdist}", f"numpy\x0b{project}", f"numpy\n{project}",
        f"-e {project}", f"--editable={project}", f"-f {plant['sdist'].parent} evil", f"evil --find-links {plant['sdist'].parent}",
        f"--no-index --find-links={plant['sdist'].parent} evil", f"evil -r {project}/pyproject.toml", f"${{HOME}}{project}",
        "%2e%2e%2f" * 6 + project.lstrip("/"), f"http://127.0.0.1:9{project}", f"evil @ https://127.0.0.1:9/{plant['sdist'].name}",
    ]  # fmt: skip


def test_control_pip_does_run_the_planted_backend_when_given_its_path(plant, tmp_path):
    """Without skillharbor's checks the plant executes, even with --only-binary=:all: (so the marker detects)."""
    for target in (plant["project"], plant["sdist"]):
        plant["marker"].unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--isolated", "--no-index", "--dry-run", "--ignore-installed",
             "--only-binary=:all:", "--no-build-isolation", "--target", str(tmp_path / "t"), str(target)],
            capture_output=True, timeout=120, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        )  # fmt: skip
        assert plant["marker"].exists(), f"the planted project at {target} did not run: the test would prove nothing"
    plant["marker"].unlink()


@pytest.fixture
def api(stack):
    with Client(stack.app) as client:
        yield Api(client)


def test_no_spelling_runs_it_through_the_preflight_scan(api, plant):
    publisher = api.key("publisher", "author")
    for spelling in spellings(plant):
        status, body = api.call("post", "/api/packages/scan", {"requirements": [spelling]}, key=publisher)
        assert status == 400 and body["error"] == "invalid_requirement", (spelling, body)
        assert len(body["problems"]) == 1, body
    assert not plant["marker"].exists()


def test_no_spelling_runs_it_through_the_seed_install(api, plant):
    api.approve("numpy")
    api.approve("evil")
    agent = api.agent("intern-1", "INTERN")
    for spelling in spellings(plant):
        status, body = api.call("post", "/api/packages/install", {"skill_id": "evil", "requirements": [spelling]}, key=agent)
        assert status == 400 and body["error"] == "invalid_requirement", (spelling, body)
    assert not plant["marker"].exists()


def test_no_spelling_runs_it_through_an_import(api, plant, stack):
    listed = spellings(plant)
    status, body = api.upload(skill_md("Planted", listed))
    assert status == 400 and body["error"] == "invalid_skill", body
    assert len(body["problems"]) == len(listed), body["problems"]
    one_line = [s for s in listed if "\n" not in s]
    status, body = api.upload(skill_zip("Planted Zip", "\n".join(one_line) + "\n"), "application/zip")
    assert status == 400 and len(body["problems"]) == len(one_line), body
    assert not plant["marker"].exists()


def test_the_resolver_refuses_them_too_when_the_api_checks_are_bypassed(stack, plant):
    """A record written before these checks existed (or altered in the table) reaches the resolver
    directly: it checks every requirement again and never hands pip a path."""
    from chalicelib.api.services import import_service
    from chalicelib.errors import InvalidRequirement

    service = import_service()
    for spelling in spellings(plant):
        with pytest.raises(InvalidRequirement) as refused:
            service.resolver.resolve([spelling], service.target_platform())
        assert len(refused.value.problems) == 1
    assert not plant["marker"].exists()
