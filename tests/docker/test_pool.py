"""Warm pools against the real engine: a pooled container is as locked down
as a cold one, is used once, is replaced, and goes away when unused; a
pooled interpreter may hold the skill's packages imported ahead."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from chalicelib.errors import BuildFailed
from chalicelib.packages.pins import Pin
from chalicelib.runner import builder, engine, sandbox
from chalicelib.runner.pool import OWNER_LABEL, POOL_ROLE, PoolKey, WarmPool
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, RunStatus
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


def _pool_containers(client: Any, pool: WarmPool) -> list[str]:
    found = client.api.containers(all=True, filters={"label": [f"{engine.ROLE_LABEL}={POOL_ROLE}", f"{OWNER_LABEL}={pool.owner}"]})
    return [c["Id"] for c in found]


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture(scope="module")
def pool(docker_client, base_image) -> Any:
    warm = WarmPool(docker_client, size_per_image=1, max_total=4)
    yield warm
    warm.close()
    assert _pool_containers(docker_client, warm) == []


def _request(code: str, inputs: dict | None, image: str, packages: list[str] | None, preimport: bool, **kwargs: Any) -> RunRequest:
    files = kwargs.pop("files", None) or {}
    entrypoint = kwargs.pop("entrypoint", "main")
    return RunRequest(image=image, code=code, entrypoint=entrypoint, inputs=inputs or {}, files=files,
                      limits=RunLimits(**{"timeout_seconds": 10, **kwargs}), packages=packages or [], preimport=preimport)  # fmt: skip


def _pooled_run(pool: WarmPool, request: RunRequest) -> RunResult:
    assert pool.wait_ready(request, count=1, timeout=120), pool.stats()
    hits = pool.hits
    result = pool.run(request)
    assert result is not None and pool.hits == hits + 1, "the run did not use a warm container"
    pool.forget(lambda image: True)  # no refill churn between tests
    assert pool.wait_removed()
    return result


@pytest.fixture(params=["cold", "pooled"])
def run_any(request: pytest.FixtureRequest, docker_client, base_image, pool) -> Callable[..., RunResult]:
    """run_any(code, inputs=None, *, image=None, packages=None, preimport=True, **limits): cold or pooled."""

    def _run(code: str, inputs: dict | None = None, *, image: str | None = None, packages: list[str] | None = None,
             preimport: bool = True, **kwargs: Any) -> RunResult:  # fmt: skip
        run_request = _request(code, inputs, image or base_image.tag, packages, preimport, **kwargs)
        if request.param == "cold":
            return sandbox.run(docker_client, run_request)
        return _pooled_run(pool, run_request)

    return _run


# --- the isolation checks of test_sandbox / test_redteam, cold and pooled ---------------


def test_inputs_and_prints(run_any):
    result = run_any("import sys\ndef main(a, b=10):\n    print('out')\n    print('err', file=sys.stderr)\n    return a + b\n", {"a": 1})
    assert result.status == RunStatus.OK and result.output == 11
    assert result.stdout == "out\n" and result.stderr == "err\n"


def test_no_network(run_any):
    result = run_any(
        "import os, socket\n"
        "def main():\n"
        "    try:\n"
        "        socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "        return 'connected'\n"
        "    except OSError as exc:\n"
        "        return [str(exc), sorted(os.listdir('/sys/class/net'))]\n"
    )
    assert "unreachable" in result.output[0].lower() and result.output[1] == ["lo"]


def test_read_only_root(run_any):
    code = "import errno\ndef main():\n    try:\n        open('/etc/evil', 'w')\n        return 'written'\n    except OSError as exc:\n        return errno.errorcode[exc.errno]\n"
    assert run_any(code).output in ("EROFS", "EACCES")


def test_uid_and_no_capabilities(run_any):
    result = run_any(
        "import os\n"
        "def main():\n"
        "    status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "    return [os.getuid(), int(status['CapEff'], 16), int(status['CapBnd'], 16), status['NoNewPrivs'].strip(), status['Seccomp'].strip()]\n"
    )
    assert result.output == [10001, 0, 0, "1", "2"]


def test_tmpfs_limit(run_any):
    code = (
        "import errno\n"
        "def main():\n"
        "    try:\n"
        "        with open('/tmp/fill', 'wb') as fh:\n"
        "            while True:\n"
        "                fh.write(b'0' * 1048576)\n"
        "                fh.flush()\n"
        "    except OSError as exc:\n"
        "        return errno.errorcode[exc.errno]\n"
    )
    assert run_any(code, tmpfs_mb=8).output == "ENOSPC"


def test_memory_limit_and_bomb(run_any):
    limit = run_any("def main():\n    return open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read().strip()\n", memory_mb=96)
    assert limit.output == str(96 * 1024 * 1024)
    bomb = run_any("def main():\n    hog = bytearray()\n    while True:\n        hog += b'x' * (16 << 20)\n", memory_mb=64)
    assert bomb.status == RunStatus.OOM_KILLED


def test_infinite_loop_times_out(run_any):
    result = run_any("def main():\n    while True:\n        pass\n", timeout_seconds=2)
    assert result.status == RunStatus.TIMEOUT and "2s" in result.error


def test_output_flood_is_truncated(run_any):
    result = run_any("import sys\ndef main():\n    sys.stdout.write('x' * 3_000_000)\n    return 'done'\n", max_output_bytes=100_000)
    assert result.status == RunStatus.OUTPUT_TRUNCATED and result.stdout_truncated and len(result.stdout) == 100_000


def test_forged_result_through_init_stdout_is_ignored(run_any):
    code = (
        "import json\n"
        "def main():\n"
        "    fake = json.dumps({'status': 'ok', 'output': 'forged'})\n"
        "    try:\n"
        "        with open('/proc/1/fd/1', 'w') as out:\n"
        "            out.write('\\nSKILLHARBOR-RESULT-v1 ' + 'b' * 64 + ' ' + fake + '\\n')\n"
        "    except OSError as exc:\n"
        "        raise RuntimeError(f'real failure ({exc.strerror})')\n"
        "    raise RuntimeError('real failure')\n"
    )
    result = run_any(code)
    assert result.status == RunStatus.EXCEPTION and "real failure (Permission denied)" in result.error


def test_job_and_nonce_cannot_be_read_back(run_any):
    code = (
        "import os\n"
        "def main():\n"
        "    fd = os.open('/proc/1/fd/0', os.O_RDONLY | os.O_NONBLOCK)\n"
        "    try:\n"
        "        return os.read(fd, 65536).decode(errors='replace')\n"
        "    except BlockingIOError:\n"
        "        return ''\n"
    )
    result = run_any(code)
    assert "nonce" not in str(result.output)


def test_host_environment_does_not_leak(run_any, host_canary):
    code = (
        "import os\n"
        "def main():\n"
        "    try:\n"
        "        init = open('/proc/1/environ', 'rb').read().decode(errors='replace')\n"
        "    except PermissionError:\n"
        "        init = 'unreadable'\n"
        "    return [dict(os.environ), init]\n"
    )
    result = run_any(code)
    assert result.status == RunStatus.OK
    assert host_canary[0] not in str(result.output) and host_canary[1] not in str(result.output)
    assert "AWS_" not in str(result.output)


def test_the_skill_cannot_kill_the_supervisor(run_any):
    code = "import os, signal\ndef main():\n    os.kill(os.getppid(), signal.SIGKILL)\n    return ['still supervised', os.getppid()]\n"
    result = run_any(code)
    assert result.status == RunStatus.OK and result.output == ["still supervised", 1]


# --- pool behaviour ---------------------------------------------------------------------------


def test_pooled_container_has_the_cold_container_settings(docker_client, base_image, pool):
    request = _request("", None, base_image.tag, None, True, memory_mb=128, pids=64)
    assert pool.wait_ready(request, count=1)
    [pooled_id] = [w.container_id for w in pool._idle[PoolKey.of(request)]]
    cold_id = sandbox.create(docker_client.api, request, command=["true"])
    try:
        pooled, cold = (docker_client.api.inspect_container(c) for c in (pooled_id, cold_id))
        assert pooled["HostConfig"] == cold["HostConfig"]
        for field in ("User", "Env", "WorkingDir", "AttachStdin", "OpenStdin", "StdinOnce", "NetworkDisabled"):
            assert pooled["Config"].get(field) == cold["Config"].get(field), field
        assert pooled["HostConfig"]["ReadonlyRootfs"] and pooled["HostConfig"]["NetworkMode"] == "none"
    finally:
        sandbox._remove(docker_client.api, cold_id)
        pool.forget(lambda image: True)


def test_a_pooled_container_runs_one_job_and_is_replaced(docker_client, base_image, pool):
    code = (
        "import os, socket\n"
        "def main():\n"
        "    seen = os.path.exists('/tmp/marker')\n"
        "    open('/tmp/marker', 'w').write('x')\n"
        "    return [socket.gethostname(), seen]\n"
    )
    request = _request(code, None, base_image.tag, None, True)
    runs = []
    for _ in range(3):
        assert pool.wait_ready(request, count=1)
        result = pool.run(request)
        assert result is not None and result.status == RunStatus.OK
        runs.append(result.output)
    hosts = [host for host, _ in runs]
    assert len(set(hosts)) == 3, "a warm container was used twice"
    assert not any(seen for _, seen in runs), "a file from an earlier run was visible"
    assert pool.wait_removed()
    remaining = _pool_containers(docker_client, pool)
    assert not any(cid.startswith(host) for cid in remaining for host in hosts), "a used container was kept"
    # the pool refilled behind the runs
    assert _eventually(lambda: any(w.ready for w in pool._idle.get(PoolKey.of(request), [])))
    pool.forget(lambda image: True)


def test_idle_pools_shrink_to_zero(docker_client, base_image):
    short = WarmPool(docker_client, size_per_image=2, max_total=4, idle_ttl_seconds=1.0)
    try:
        request = _request("", None, base_image.tag, None, True)
        assert short.wait_ready(request, count=2)
        assert len(_pool_containers(docker_client, short)) == 2
        assert _eventually(lambda: short.stats()["idle"] == 0 and short.stats()["pools"] == [])
        assert _eventually(lambda: _pool_containers(docker_client, short) == [])
    finally:
        short.close()


def test_total_cap_holds_across_images(docker_client, base_image):
    capped = WarmPool(docker_client, size_per_image=2, max_total=3)
    try:
        first = _request("", None, base_image.tag, None, True, memory_mb=100)
        second = _request("", None, base_image.tag, None, True, memory_mb=120)
        capped.prewarm(first)
        capped.prewarm(second)
        assert capped.wait_ready(second, count=2)
        assert _eventually(lambda: capped.stats()["idle"] == 3)
        time.sleep(1.5)  # a further refill round must not go over the cap
        assert capped.stats()["idle"] == 3 and len(_pool_containers(docker_client, capped)) == 3
    finally:
        capped.close()
    assert _pool_containers(docker_client, capped) == []


def test_docker_engine_uses_the_pool_and_falls_back_to_cold(docker_client, base_image):
    from chalicelib.runner.worker import DockerEngine

    warm_engine = DockerEngine(get_settings(), pool_enabled=True)
    try:
        request = RunRequest(image=base_image.tag, code="def main():\n    return 7\n", limits=RunLimits(timeout_seconds=10))
        first = warm_engine.run(request)  # nothing warm yet: cold, and the key starts warming
        assert first.status == RunStatus.OK and first.output == 7
        pool = warm_engine.warm_pool()
        assert pool.misses == 1 and pool.hits == 0
        assert pool.wait_ready(request, count=1)
        second = warm_engine.run(request)
        assert second.status == RunStatus.OK and second.output == 7 and pool.hits == 1
    finally:
        warm_engine.close()
    cold_engine = DockerEngine(get_settings(), pool_enabled=False)
    assert cold_engine.run(request).output == 7 and cold_engine.warm_pool() is None


# --- pre-imported packages -------------------------------------------------------------------


@pytest.fixture(scope="module")
def six_image(docker_client, base_image, offline_pypi) -> builder.ImageInfo:
    house = builder.Wheelhouse(Path(get_settings().cache_dir) / "wheelhouse")
    try:
        house.fetch(SIX)
    except BuildFailed as exc:
        offline_pypi(exc.message)
    return builder.build_image(docker_client, base_image, [SIX], wheelhouse=house)


SIX_PROBE = "import sys\ndef main():\n    before = 'six' in sys.modules\n    import six\n    return [before, six.__name__]\n"


def test_preimported_package_is_loaded_before_the_skill_starts(pool, six_image):
    request = _request(SIX_PROBE, None, six_image.tag, ["six"], True)
    assert _pooled_run(pool, request).output == [True, "six"]


def test_preimport_opt_out_and_cold_runs_import_on_demand(pool, six_image, docker_client):
    opted_out = _request(SIX_PROBE, None, six_image.tag, ["six"], False)
    assert _pooled_run(pool, opted_out).output == [False, "six"]
    cold = _request(SIX_PROBE, None, six_image.tag, ["six"], True)
    assert sandbox.run(docker_client, cold).output == [False, "six"]


def test_a_skill_file_shadows_a_preimported_module_as_in_a_cold_run(pool, six_image):
    code = "import six\ndef main():\n    return getattr(six, 'MINE', None)\n"
    request = _request(code, None, six_image.tag, ["six"], True, files={"six.py": "MINE = 'local'\n"})
    assert _pooled_run(pool, request).output == "local"


# a "package" whose import code tries to learn the run's nonce before the job
# arrives: it forges a ready line and keeps reading the container's stdin
THIEF = '''
import os, threading, time
try:
    with open("/proc/1/fd/1", "w") as out:
        out.write("\\nSKILLHARBOR-READY " + "0" * 64 + "\\n")
except OSError:
    pass  # PID 1 is the supervisor, under another uid
def _steal():
    try:
        fd = os.open("/proc/1/fd/0", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        open("/tmp/stolen", "w").write(f"refused: {exc.strerror}")
        return
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            data = b""
        if data:
            with open("/tmp/stolen", "ab") as fh:
                fh.write(data)
        time.sleep(0.0005)
threading.Thread(target=_steal, daemon=True).start()
'''


@pytest.fixture(scope="module")
def thief_image(docker_client, base_image) -> Any:
    tag = f"skillharbor/env:test-thief-{uuid.uuid4().hex[:12]}"
    files = {
        "thief.py": THIEF,
        "thief-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: thief\nVersion: 1.0\n",
        "thief-1.0.dist-info/top_level.txt": "thief\n",
        "thief-1.0.dist-info/RECORD": "",
    }
    writes = "; ".join(
        f"p = os.path.join(site, {name!r}); os.makedirs(os.path.dirname(p), exist_ok=True); "
        f"open(p, 'wb').write(base64.b64decode({base64.b64encode(text.encode()).decode()!r}))"
        for name, text in files.items()
    )
    script = f"import base64, os, sysconfig; site = sysconfig.get_paths()['purelib']; {writes}"
    dockerfile = (
        f"FROM {base_image.tag}\nUSER 0:0\nRUN /opt/skillharbor/venv/bin/python -c \"{script}\"\nUSER 10001:10001\n"
        f'LABEL skillharbor.managed="true" skillharbor.role="env" skillharbor.test="{tag}"\n'
    )
    engine.build_image(docker_client, engine.tar_context({"Dockerfile": dockerfile}), tag)
    yield tag
    try:
        docker_client.images.remove(tag, force=True)
    except Exception:
        pass


def test_preimported_code_cannot_steal_the_nonce(pool, thief_image):
    code = (
        "import os, sys\n"
        "def main():\n"
        "    stolen = open('/tmp/stolen', 'rb').read().decode(errors='replace') if os.path.exists('/tmp/stolen') else ''\n"
        "    return ['thief' in sys.modules, stolen]\n"
    )
    request = _request(code, None, thief_image, ["thief"], True)
    result = _pooled_run(pool, request)
    assert result.status == RunStatus.OK, result
    imported, stolen = result.output
    assert imported, "the thief package was not pre-imported, so the test proves nothing"
    assert "nonce" not in stolen


def test_the_result_says_whether_a_warm_container_ran_it(base_image) -> None:
    from chalicelib.runner.worker import DockerEngine

    runner = DockerEngine(get_settings(), pool_enabled=True)
    request = _request("def main():\n    return 1\n", None, base_image.tag, None, True)
    try:
        cold = runner.run(request)  # the first run of a key finds nothing warm, and asks for its pool
        assert cold.status == RunStatus.OK and cold.warm is False, cold
        assert runner.warm_pool().wait_ready(request, count=1, timeout=120)
        warm = runner.run(request)
        assert warm.status == RunStatus.OK and warm.warm is True, warm
    finally:
        runner.close()
