"""Wheels staged on the host: the wheel format's rules, checked hashes, one root-owned layer."""

from __future__ import annotations

import io
import sys
import tarfile

import pytest

from chalicelib.errors import BuildFailed
from chalicelib.packages.pins import TargetPlatform
from chalicelib.runner import wheel_staging
from tests.wheel_support import make_wheel, pin_for

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
SITE = wheel_staging.site_packages(PY).lstrip("/")


def test_a_wheel_is_installed_with_a_launcher_for_the_images_python(tmp_path):
    wheel = make_wheel(tmp_path)
    tree = wheel_staging.stage_wheel(wheel, pin_for(wheel).sha256, tmp_path / "staged", PY)
    assert (tree / SITE / "demo_tool" / "__init__.py").read_text().startswith("def main")
    launcher = tree / "opt/skillharbor/venv/bin/demo-tool"
    assert launcher.read_text().splitlines()[0] == "#!/opt/skillharbor/venv/bin/python"
    assert (tree / SITE / "demo_tool-1.0.dist-info" / "INSTALLER").read_text().strip() == "skillharbor"
    assert list((tree / SITE / "demo_tool" / "__pycache__").glob("*.pyc"))  # compiled once, here


def test_the_staged_tree_is_reused_for_the_same_wheel(tmp_path):
    wheel = make_wheel(tmp_path)
    first = wheel_staging.stage_wheel(wheel, "a" * 64, tmp_path / "staged", PY)
    marker = first / "marker"
    marker.write_text("kept")
    assert wheel_staging.stage_wheel(wheel, "a" * 64, tmp_path / "staged", PY) == first and marker.exists()


def test_a_file_that_does_not_match_the_wheels_record_fails_and_leaves_nothing(tmp_path):
    wheel = make_wheel(tmp_path, tamper=True)
    with pytest.raises(BuildFailed, match="could not be installed"):
        wheel_staging.stage_wheel(wheel, pin_for(wheel).sha256, tmp_path / "staged", PY)
    assert list((tmp_path / "staged").iterdir()) == []


def test_a_wheel_entry_escaping_its_directory_is_refused_on_the_host(tmp_path):
    wheel = make_wheel(tmp_path, extra={"../../../../escaped.txt": "owned\n"})
    with pytest.raises(BuildFailed, match="could not be installed"):
        wheel_staging.stage_wheel(wheel, pin_for(wheel).sha256, tmp_path / "staged", PY)
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_wheel_for_another_interpreter_is_refused(tmp_path):
    wheel = make_wheel(tmp_path, tag="cp312-cp312-manylinux_2_17_x86_64")
    target = TargetPlatform(python_version="3.11", manylinux="manylinux_2_36_x86_64")
    with pytest.raises(BuildFailed, match="does not install on CPython 3.11"):
        wheel_staging.check_wheel_tags(pin_for(wheel), wheel.name, target)
    wheel_staging.check_wheel_tags(pin_for(wheel), "six-1.0-py2.py3-none-any.whl", target)  # pure wheels pass


def test_the_layer_is_root_owned_and_leaves_the_bases_directories_alone(tmp_path):
    wheel = make_wheel(tmp_path)
    tree = wheel_staging.stage_wheel(wheel, pin_for(wheel).sha256, tmp_path / "staged", PY)
    out = io.BytesIO()
    files = wheel_staging.write_layer([tree], PY, out)
    with tarfile.open(fileobj=out) as layer:
        members = {m.name: m for m in layer.getmembers()}
    assert files == sum(1 for m in members.values() if m.isfile())
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert "opt" not in members and SITE not in members and "opt/skillharbor/venv/bin" not in members
    assert members[f"{SITE}/demo_tool"].isdir()
    assert members["opt/skillharbor/venv/bin/demo-tool"].mode == 0o755
    assert members[f"{SITE}/demo_tool/__init__.py"].mode == 0o644
