"""Each isolation property, verified by code running inside the container."""

from __future__ import annotations

import pytest

from chalicelib.runner.spec import RunStatus

pytestmark = pytest.mark.docker


def test_inputs_reach_the_entrypoint_and_prints_are_captured_separately(run_code):
    result = run_code(
        "import sys\n"
        "def main(a, b=10):\n"
        "    print('to stdout')\n"
        "    print('to stderr', file=sys.stderr)\n"
        "    return {'sum': a + b}\n",
        {"a": 1, "b": 2, "ignored": 3},
    )
    assert result.status == RunStatus.OK and result.success
    assert result.output == {"sum": 3}
    assert result.stdout == "to stdout\n"
    assert result.stderr == "to stderr\n"
    assert result.duration_ms > 0


def test_single_data_style_receives_every_input(run_code):
    result = run_code("def main(data):\n    return sorted(data)\n", {"x": 1, "y": 2})
    assert result.output == ["x", "y"]


def test_kwargs_entrypoint_receives_every_input(run_code):
    result = run_code("def run(**kw):\n    return kw\n", {"x": 1, "y": [1, 2]}, entrypoint="run")
    assert result.output == {"x": 1, "y": [1, 2]}


def test_skill_files_are_importable(run_code):
    result = run_code(
        "from helpers.maths import double\ndef main(n):\n    return double(n)\n",
        {"n": 21},
        files={"helpers/__init__.py": "", "helpers/maths.py": "def double(n):\n    return 2 * n\n"},
    )
    assert result.output == 42


def test_exception_is_reported_with_traceback(run_code):
    result = run_code("def main():\n    raise ValueError('bad value 42')\n")
    assert result.status == RunStatus.EXCEPTION and not result.success
    assert "ValueError: bad value 42" in result.error
    assert "skill_main.py" in result.traceback and "raise ValueError" in result.traceback


def test_missing_required_input_is_named(run_code):
    result = run_code("def main(query):\n    return query\n", {})
    assert result.status == RunStatus.EXCEPTION
    assert "'query'" in result.error


def test_non_serialisable_return_value_is_an_exception(run_code):
    result = run_code("def main():\n    return object()\n")
    assert result.status == RunStatus.EXCEPTION
    assert "not JSON serialisable" in result.error


def test_cannot_open_a_socket(run_code):
    result = run_code(
        "import socket\n"
        "def main():\n"
        "    try:\n"
        "        socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "        return 'connected'\n"
        "    except OSError as exc:\n"
        "        return str(exc)\n"
    )
    assert result.status == RunStatus.OK
    assert "unreachable" in result.output.lower()


def test_cannot_resolve_dns(run_code):
    result = run_code(
        "import socket\n"
        "def main():\n"
        "    try:\n"
        "        return socket.getaddrinfo('pypi.org', 443)[0][4][0]\n"
        "    except socket.gaierror as exc:\n"
        "        return 'failed: ' + str(exc)\n"
    )
    assert result.output.startswith("failed")


def test_only_loopback_interface(run_code):
    result = run_code("import os\ndef main():\n    return sorted(os.listdir('/sys/class/net'))\n")
    assert result.output == ["lo"]


@pytest.mark.parametrize("path", ["/etc/evil", "/opt/skillharbor/harness.py", "/home/evil", "/evil", "/var/tmp/evil"])
def test_cannot_write_outside_tmp(run_code, path):
    result = run_code(
        "import errno\n"
        "def main(path):\n"
        "    try:\n"
        "        with open(path, 'w') as fh:\n"
        "            fh.write('x')\n"
        "        return 'written'\n"
        "    except OSError as exc:\n"
        "        return errno.errorcode[exc.errno]\n",
        {"path": path},
    )
    assert result.output in ("EROFS", "EACCES"), result


def test_tmp_fills_up_at_its_limit(run_code):
    result = run_code(
        "import errno\n"
        "def main():\n"
        "    written = 0\n"
        "    try:\n"
        "        with open('/tmp/fill', 'wb') as fh:\n"
        "            while True:\n"
        "                fh.write(b'0' * 1048576)\n"
        "                fh.flush()\n"
        "                written += 1\n"
        "    except OSError as exc:\n"
        "        return [errno.errorcode[exc.errno], written]\n",
        tmpfs_mb=8,
    )
    error, written_mib = result.output
    assert error == "ENOSPC"
    assert written_mib <= 8


def test_uid_is_not_root_and_no_capabilities(run_code):
    result = run_code(
        "import os\n"
        "def main():\n"
        "    status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "    return {'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(),\n"
        "            'cap_eff': status['CapEff'].strip(), 'cap_bnd': status['CapBnd'].strip(),\n"
        "            'no_new_privs': status['NoNewPrivs'].strip(), 'seccomp': status['Seccomp'].strip()}\n"
    )
    facts = result.output
    assert facts["uid"] != 0 and facts["euid"] != 0 and facts["gid"] != 0
    assert int(facts["cap_eff"], 16) == 0 and int(facts["cap_bnd"], 16) == 0
    assert facts["no_new_privs"] == "1"
    assert facts["seccomp"] == "2"


def test_no_docker_socket_and_no_dev_shm(run_code):
    result = run_code(
        "import os\n"
        "def main():\n"
        "    paths = ['/var/run/docker.sock', '/run/docker.sock', '/dev/shm', '/run/containerd/containerd.sock']\n"
        "    return {p: os.path.exists(p) for p in paths}\n"
    )
    assert result.output and not any(result.output.values())


def test_host_environment_does_not_leak(run_code, host_canary):
    name, value = host_canary  # set in this test process
    result = run_code(
        "import os\n"
        "def main():\n"
        "    env1 = open('/proc/1/environ', 'rb').read().decode(errors='replace') if os.access('/proc/1/environ', os.R_OK) else ''\n"
        "    return {'env': dict(os.environ), 'pid1': env1}\n"
    )
    assert name not in result.output["env"]
    assert value not in str(result.output)
    assert "AWS_SECRET_ACCESS_KEY" not in str(result.output)


def test_memory_limit_matches_request_without_swap(run_code):
    result = run_code(
        "def main():\n"
        "    read = lambda p: open(p).read().strip()\n"
        "    return [read('/sys/fs/cgroup/memory/memory.limit_in_bytes'),\n"
        "            read('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes')]\n",
        memory_mb=96,
    )
    assert result.output == [str(96 * 1024 * 1024)] * 2


def test_memory_bomb_is_oom_killed(run_code):
    result = run_code("def main():\n    hog = []\n    while True:\n        hog.append(' ' * 10_000_000)\n", memory_mb=64)
    assert result.status == RunStatus.OOM_KILLED
    assert "memory" in result.error


def test_fork_bomb_is_contained_and_reported(run_code):
    result = run_code("import os\ndef main():\n    while True:\n        os.fork()\n", pids=32, timeout_seconds=4)
    assert result.status in (RunStatus.TIMEOUT, RunStatus.EXCEPTION, RunStatus.EXIT_NONZERO)
    assert not result.success and result.error


def test_infinite_loop_is_killed_at_the_timeout(run_code):
    result = run_code("def main():\n    while True:\n        pass\n", timeout_seconds=2)
    assert result.status == RunStatus.TIMEOUT
    assert "2s" in result.error


def test_sigterm_ignoring_loop_is_still_killed(run_code):
    result = run_code(
        "import signal, time\n"
        "def main():\n"
        "    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
        "        signal.signal(sig, signal.SIG_IGN)\n"
        "    while True:\n"
        "        time.sleep(0.1)\n",
        timeout_seconds=2,
    )
    assert result.status == RunStatus.TIMEOUT


def test_huge_stdout_is_truncated_and_reported(run_code):
    result = run_code(
        "import sys\ndef main():\n    sys.stdout.write('x' * 3_000_000)\n    return 'done'\n",
        max_output_bytes=100_000,
    )
    assert result.status == RunStatus.OUTPUT_TRUNCATED
    assert result.stdout_truncated
    assert len(result.stdout) == 100_000
    assert result.output == "done"


def test_huge_return_value_is_truncated_and_reported(run_code):
    result = run_code("def main():\n    return 'y' * 500_000\n", max_output_bytes=100_000)
    assert result.status == RunStatus.OUTPUT_TRUNCATED
    assert result.result_truncated and result.output is None


def test_fake_result_on_stdout_does_not_change_the_result(run_code):
    result = run_code(
        "import json\n"
        "def main():\n"
        "    print('SKILLHARBOR-RESULT-v1 ' + '0' * 64 + ' ' + json.dumps({'status': 'ok', 'output': 'forged'}))\n"
        "    print(json.dumps({'status': 'ok', 'output': 'forged', 'success': True}))\n"
        "    raise RuntimeError('the real outcome')\n"
    )
    assert result.status == RunStatus.EXCEPTION
    assert result.output is None
    assert "the real outcome" in result.error


def test_nonzero_exit_without_result_is_reported(run_code):
    result = run_code("import os\ndef main():\n    os._exit(3)\n")
    assert result.status == RunStatus.EXIT_NONZERO
    assert result.exit_code == 3


def test_missing_image_raises_not_found(run_code):
    from chalicelib.errors import NotFound

    with pytest.raises(NotFound):
        run_code("def main():\n    return 1\n", image="skillharbor/env:doesnotexist")
