"""Content-addressed env images built offline from hash-verified wheels."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from chalicelib.errors import BuildFailed
from chalicelib.packages.pins import Pin
from chalicelib.runner import builder
from chalicelib.runner.spec import RunStatus
from chalicelib.settings import get_settings

pytestmark = pytest.mark.docker

SIX = Pin(
    name="six",
    version="1.16.0",
    sha256="8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
    filename="six-1.16.0-py2.py3-none-any.whl",
    url="https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl",
    direct=True,
)


@pytest.fixture(scope="session")
def wheelhouse(offline_pypi) -> builder.Wheelhouse:
    house = builder.Wheelhouse(Path(get_settings().cache_dir) / "wheelhouse")
    try:
        house.fetch(SIX)
    except BuildFailed as exc:
        if "download" in exc.message:
            offline_pypi(exc.message)
        raise
    return house


@pytest.fixture(scope="session")
def six_image(docker_client, base_image, wheelhouse) -> builder.ImageInfo:
    return builder.build_image(docker_client, base_image, [SIX], wheelhouse=wheelhouse)


def test_env_image_runs_code_importing_the_pinned_package(six_image, run_code):
    assert six_image.tag.startswith("skillharbor/env:")
    result = run_code(
        "import os, six\n"
        "def main():\n"
        "    return {'version': six.__version__, 'wheels_left': os.path.exists('/wheels')}\n",
        image=six_image.tag,
    )
    assert result.status == RunStatus.OK, result
    assert result.output == {"version": "1.16.0", "wheels_left": False}


def test_env_image_is_labelled_with_its_pins(docker_client, six_image, base_image):
    labels = docker_client.images.get(six_image.tag).labels
    assert labels["skillharbor.managed"] == "true"
    assert labels["skillharbor.role"] == "env"
    assert labels["skillharbor.pins"] == '["six==1.16.0"]'
    assert labels["skillharbor.base"] == base_image.image_id
    assert len(labels["skillharbor.closure"]) == 64


def test_unchanged_set_is_not_rebuilt(docker_client, base_image, six_image, wheelhouse):
    again = builder.build_image(docker_client, base_image, [SIX], wheelhouse=wheelhouse)
    assert again.built is False
    assert (again.tag, again.image_id) == (six_image.tag, six_image.image_id)


def test_same_package_set_shares_one_image(base_image, six_image):
    # another skill naming the same package (pin order and the direct flag do not matter)
    other = SIX.model_copy(update={"direct": False})
    assert builder.env_tag(base_image.image_id, [other]) == six_image.tag


def test_no_packages_uses_the_base_image(docker_client, base_image):
    info = builder.build_image(docker_client, base_image, [])
    assert info.tag == base_image.tag and info.image_id == base_image.image_id


def test_wrong_sha256_fails_and_leaves_nothing(docker_client, base_image, tmp_path):
    bad = SIX.model_copy(update={"sha256": "0" * 64})
    house = builder.Wheelhouse(tmp_path)
    with pytest.raises(BuildFailed) as caught:
        builder.build_image(docker_client, base_image, [bad], wheelhouse=house)
    assert "six" in caught.value.message and "sha256 mismatch" in caught.value.message
    assert not list(tmp_path.rglob("*.whl"))
    assert builder.find_image(docker_client, builder.env_tag(base_image.image_id, [bad])) is None


def test_pip_failure_returns_the_log_and_leaves_no_tag(docker_client, base_image, tmp_path):
    # a correctly hashed file that is not a valid wheel: pip itself must fail
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("broken/__init__.py", "")
    wheel = tmp_path / "src" / "broken-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(payload.getvalue())
    pin = Pin(
        name="broken",
        version="1.0",
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        filename=wheel.name,
        url=f"https://files.pythonhosted.org/packages/{wheel.name}",  # never fetched: the wheelhouse has it
    )
    house = builder.Wheelhouse(tmp_path / "house")
    house.path_for(pin).parent.mkdir(parents=True)
    house.path_for(pin).write_bytes(wheel.read_bytes())
    with pytest.raises(BuildFailed) as caught:
        builder.build_image(docker_client, base_image, [pin], wheelhouse=house)
    assert caught.value.details.get("build_log_tail")
    assert builder.find_image(docker_client, builder.env_tag(base_image.image_id, [pin])) is None


@pytest.mark.parametrize("host_compiles", [True, False], ids=["compiled-on-host", "compiled-in-container"])
def test_a_built_package_imports_from_byte_code_and_its_script_runs(
    docker_client, base_image, tmp_path, monkeypatch, run_code, host_compiles
):
    from tests.wheel_support import make_wheel, pin_for

    from chalicelib.runner import wheel_staging

    # a host whose Python differs from the image's compiles inside the build container instead
    monkeypatch.setattr(wheel_staging, "host_can_compile", lambda version: host_compiles)
    wheel = make_wheel(tmp_path)
    pin = pin_for(wheel)
    house = builder.Wheelhouse(tmp_path / "house")
    house.path_for(pin).parent.mkdir(parents=True)
    house.path_for(pin).write_bytes(wheel.read_bytes())
    # each variant on its own copy of the base: the env tag is keyed by the base image id
    from chalicelib.runner import engine

    tag = f"skillharbor/test-base:{'host' if host_compiles else 'container'}-{tmp_path.name[-8:]}"
    image_id, _ = engine.build_image(docker_client, engine.tar_context({"Dockerfile": f"FROM {base_image.tag}\nLABEL t={tag!r}\n"}), tag)
    base = base_image.model_copy(update={"tag": tag, "image_id": image_id})
    try:
        info = builder.build_image(docker_client, base, [pin], wheelhouse=house)
        assert info.built and set(info.phases) == {"download", "install", "layer"}
        result = run_code(
            "import glob, subprocess, demo_tool\n"
            "def main():\n"
            "    out = subprocess.run(['demo-tool'], capture_output=True, text=True).stdout\n"
            "    pyc = glob.glob('/opt/skillharbor/venv/lib/python*/site-packages/demo_tool/__pycache__/*.pyc')\n"
            "    return {'script': out.strip(), 'compiled': bool(pyc), 'cached': demo_tool.__cached__ is not None}\n",
            image=info.tag,
        )
        assert result.status == RunStatus.OK, result
        assert result.output == {"script": "demo", "compiled": True, "cached": True}
        labels = docker_client.images.get(info.tag).labels
        assert labels["skillharbor.role"] == "env" and labels["skillharbor.pins"] == '["demo-tool==1.0"]'
        assert not labels.get("skillharbor.creator")
    finally:
        for image in (builder.env_tag(image_id, [pin]), tag):
            try:
                docker_client.images.remove(image, force=True)
            except Exception:
                pass
