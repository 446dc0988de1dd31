"""Red team: attempts from inside a skill to escape or exhaust the sandbox.

Each test is one attack run as skill code in a real container; it asserts
the attempt is blocked (the skill observes an error) or contained and
reported with the right status. The autouse fixture in conftest also checks
that no container is left behind after each attack. Every attack runs under
both runtimes (``runtime`` in conftest: runc, and gVisor's runsc when the
engine has it).
"""

from __future__ import annotations

import pytest

from chalicelib.runner.sandbox import SAFE_ENVIRONMENT
from chalicelib.runner.spec import RunStatus, Runtime

pytestmark = pytest.mark.docker


@pytest.fixture
def run_code(run_code, runtime):
    """Every attack here runs under each runtime (runc and gVisor's runsc): the conftest's run_code, bound to one."""
    return lambda *args, **kwargs: run_code(*args, runtime=runtime, **kwargs)

# Helper prelude for attacks that need raw syscalls.
LIBC = (
    "import ctypes, ctypes.util, errno, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def err(rc):\n"
    "    return 'ok' if rc == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))\n"
)

OS_ERROR = (
    "import errno\n"
    "def attempt(action):\n"
    "    try:\n"
    "        action()\n"
    "        return 'succeeded'\n"
    "    except OSError as exc:\n"
    "        return errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__\n"
)


def blocked(result, *allowed: str, gvisor: tuple[str, ...] = ()) -> None:
    """The attack observed one of ``allowed`` (or, under runsc, of ``gvisor``: gVisor's kernel answers
    some refusals with another errno)."""
    assert result.status == RunStatus.OK, f"attack code failed unexpectedly: {result}"
    allowed = allowed + (gvisor if under_gvisor(result) else ())
    assert result.output in allowed, f"expected one of {allowed}, got {result.output!r}"


def under_gvisor(result) -> bool:
    return result.runtime == Runtime.RUNSC


#: gVisor's netstack answers a connection to an unroutable address with EHOSTUNREACH (Linux: ENETUNREACH)
NO_ROUTE_GVISOR = ("EHOSTUNREACH",)


# --- network egress ------------------------------------------------------------


def test_tcp_egress_to_public_ip(run_code):
    result = run_code(OS_ERROR + "import socket\ndef main():\n    return attempt(lambda: socket.create_connection(('8.8.8.8', 443), timeout=3))\n")
    blocked(result, "ENETUNREACH", gvisor=NO_ROUTE_GVISOR)


def test_udp_dns_query_to_public_resolver(run_code):
    code = OS_ERROR + (
        "import socket\n"
        "def main():\n"
        "    def query():\n"
        "        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "        s.settimeout(2)\n"
        "        s.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x04pypi\\x03org\\x00\\x00\\x01\\x00\\x01', ('8.8.8.8', 53))\n"
        "        s.recvfrom(512)\n"
        "    return attempt(query)\n"
    )
    blocked(run_code(code), "ENETUNREACH", gvisor=NO_ROUTE_GVISOR)


def test_name_resolution(run_code):
    code = "import socket\ndef main():\n    try:\n        socket.gethostbyname('files.pythonhosted.org')\n        return 'resolved'\n    except OSError:\n        return 'failed'\n"
    blocked(run_code(code), "failed")


def test_docker_bridge_gateway(run_code):
    result = run_code(OS_ERROR + "import socket\ndef main():\n    return attempt(lambda: socket.create_connection(('172.17.0.1', 2375), timeout=3))\n")
    blocked(result, "ENETUNREACH", gvisor=NO_ROUTE_GVISOR)


def test_ipv6_egress(run_code):
    code = OS_ERROR + (
        "import socket\n"
        "def main():\n"
        "    def go():\n"
        "        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
        "        s.settimeout(3)\n"
        "        s.connect(('2606:4700:4700::1111', 443))\n"
        "    return attempt(go)\n"
    )
    blocked(run_code(code), "ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT", gvisor=NO_ROUTE_GVISOR)


def test_raw_packet_socket_needs_capability(run_code):
    result = run_code(OS_ERROR + "import socket\ndef main():\n    return attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))\n")
    blocked(result, "EPERM")


# --- Docker socket and host files ---------------------------------------------


def test_connect_to_docker_socket(run_code):
    code = OS_ERROR + (
        "import socket\n"
        "def main():\n"
        "    def go():\n"
        "        s = socket.socket(socket.AF_UNIX)\n"
        "        s.connect('/var/run/docker.sock')\n"
        "    return attempt(go)\n"
    )
    blocked(run_code(code), "ENOENT")


def test_search_filesystem_for_any_socket(run_code):
    code = (
        "import os, stat\n"
        "def main():\n"
        "    found = []\n"
        "    for top in ('/run', '/var', '/tmp', '/opt', '/etc', '/dev', '/home', '/root', '/srv', '/mnt'):\n"
        "        for root, dirs, files in os.walk(top, onerror=lambda e: None):\n"
        "            for name in files:\n"
        "                try:\n"
        "                    if stat.S_ISSOCK(os.lstat(os.path.join(root, name)).st_mode):\n"
        "                        found.append(os.path.join(root, name))\n"
        "                except OSError:\n"
        "                    pass\n"
        "    return found\n"
    )
    blocked(run_code(code), [])


def test_no_host_mounts(run_code):
    code = (
        "def main():\n"
        "    return {line.split()[4]: line.split()[5] for line in open('/proc/self/mountinfo')}\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.OK
    expected = {"/", "/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/tmp",
                "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/console"}  # no docker-init: the harness is PID 1
    if under_gvisor(result):
        expected.add("/dev/shm")  # gVisor keeps a /dev/shm whatever ipc_mode says: covered empty and read-only
    mounts = result.output
    extra = [m for m in mounts if m not in expected and not m.startswith(("/sys/fs/cgroup/", "/proc/", "/sys/firmware", "/sys/devices"))]
    assert extra == [], f"unexpected mounts: {extra}"
    assert mounts["/"].startswith("ro")


def test_supervisor_environment_and_memory_unreadable(run_code):
    code = OS_ERROR + (
        "import os\n"
        "def main():\n"
        "    ppid = os.getppid()\n"
        "    return [attempt(lambda: open(f'/proc/{ppid}/{name}', 'rb').read()) for name in ('environ', 'mem', 'fd/0')]\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.OK
    if under_gvisor(result):
        # gVisor 20221219 lets a process of the same real uid read /proc/<pid>/environ of a non-dumpable one;
        # the supervisor's environment is the fixed safe one (the nonce comes on stdin), its memory stays closed
        assert result.output[1:] == ["EACCES", "EACCES"]
    else:
        assert result.output == ["EACCES", "EACCES", "EACCES"]


def test_init_environment_holds_no_host_variables(run_code, host_canary):
    # PID 1 is the supervisor, under another uid: its environment cannot even be opened
    code = OS_ERROR + "def main():\n    return attempt(lambda: open('/proc/1/environ', 'rb').read())\n"
    result = run_code(code)
    assert result.status == RunStatus.OK
    if not under_gvisor(result):
        assert result.output == "EACCES"
        return
    # gVisor lets the skill read it (see above): it holds the safe environment and nothing of the host
    read = "def main():\n    return [v.split('=', 1)[0] for v in open('/proc/1/environ').read().split('\\0') if v]\n"
    names = run_code(read)
    # HOSTNAME is the engine's own: the container's id, as in /etc/hostname
    assert names.status == RunStatus.OK and set(names.output) <= set(SAFE_ENVIRONMENT) | {"HOSTNAME"}, names.output
    assert host_canary[0] not in names.output


# --- writing and executing ------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/passwd", "/opt/skillharbor/harness.py", "/usr/bin/python3", "/dev/evil", "/proc/sysrq-trigger"])
def test_write_system_files(run_code, path):
    code = OS_ERROR + "def main(path):\n    return attempt(lambda: open(path, 'a').write('pwned'))\n"
    blocked(run_code(code, {"path": path}), "EROFS", "EACCES", "EPERM", "ENOENT")


def test_execute_dropped_binary_in_tmp(run_code):
    code = OS_ERROR + (
        "import os, shutil, subprocess\n"
        "def main():\n"
        "    shutil.copy('/bin/true', '/tmp/mytrue')\n"
        "    os.chmod('/tmp/mytrue', 0o755)\n"
        "    return attempt(lambda: subprocess.run(['/tmp/mytrue'], check=True))\n"
    )
    blocked(run_code(code), "EACCES")


# --- privilege escalation and kernel surface ----------------------------------


def test_setuid_root(run_code):
    blocked(run_code(OS_ERROR + "import os\ndef main():\n    return attempt(lambda: os.setuid(0))\n"), "EPERM")


def test_setuid_binary_does_not_elevate(run_code):
    code = (
        "import os, subprocess\n"
        "def main():\n"
        "    for su in ('/bin/su', '/usr/bin/su'):\n"
        "        if os.path.exists(su):\n"
        "            done = subprocess.run([su, '-c', 'id -u', 'root'], input='', capture_output=True, text=True, timeout=5)\n"
        "            return 'root' if done.stdout.strip() == '0' else 'denied'\n"
        "    return 'denied'\n"
    )
    blocked(run_code(code), "denied")


def test_mount_tmpfs(run_code):
    code = LIBC + "def main():\n    os.makedirs('/tmp/m', exist_ok=True)\n    return err(libc.mount(b'none', b'/tmp/m', b'tmpfs', 0, None))\n"
    blocked(run_code(code), "EPERM")


def test_unshare_user_namespace(run_code):
    code = LIBC + "def main():\n    return err(libc.unshare(0x10000000))\n"
    # gVisor implements user namespaces in its own kernel: the host kernel's user namespace code, the reason
    # runc's profile refuses unshare, is out of reach, and capabilities in it reach only gVisor's objects
    blocked(run_code(code), "EPERM", "EINVAL", gvisor=("ok",))


def test_setns_into_init_namespace(run_code):
    code = LIBC + "def main():\n    fd = os.open('/proc/self/ns/net', os.O_RDONLY)\n    return err(libc.setns(fd, 0))\n"
    blocked(run_code(code), "EPERM", gvisor=("ENOTSUP",))


def test_ptrace_the_supervisor(run_code):
    code = LIBC + "libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]\n" + (
        "def main():\n    return err(libc.ptrace(16, os.getppid(), None, None))\n"  # PTRACE_ATTACH
    )
    blocked(run_code(code), "EPERM")


def test_chroot(run_code):
    blocked(run_code(OS_ERROR + "import os\ndef main():\n    return attempt(lambda: os.chroot('/tmp'))\n"), "EPERM")


def test_kernel_keyring(run_code):
    code = LIBC + (
        "import platform\n"
        "def main():\n"
        "    if platform.machine() != 'x86_64':\n"
        "        return 'EPERM'\n"
        "    return err(libc.syscall(248, b'user', b'k', b'v', 1, -2))\n"  # add_key(..., KEY_SPEC_PROCESS_KEYRING)
    )
    blocked(run_code(code), "EPERM", "ENOSYS", gvisor=("EACCES",))


def test_raise_own_priority(run_code):
    # under gVisor a nice value is bookkeeping of its own scheduler: the sandbox's host threads keep theirs
    code = OS_ERROR + "import os\ndef main():\n    return attempt(lambda: os.setpriority(os.PRIO_PROCESS, 0, -5))\n"
    blocked(run_code(code), "EACCES", "EPERM", gvisor=("succeeded",))


# --- exhaustion --------------------------------------------------------------------


def test_fork_bomb(run_code):
    result = run_code("import os\ndef main():\n    while True:\n        os.fork()\n", pids=32, timeout_seconds=4)
    assert result.status in (RunStatus.TIMEOUT, RunStatus.EXCEPTION, RunStatus.EXIT_NONZERO)


def test_thread_bomb(run_code):
    code = (
        "import threading, time\n"
        "def main():\n"
        "    started = 0\n"
        "    try:\n"
        "        while True:\n"
        "            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "            started += 1\n"
        "    except RuntimeError:\n"
        "        return started\n"
    )
    result = run_code(code, pids=32)
    assert result.status == RunStatus.OK
    assert result.output < 32


def test_file_descriptor_bomb(run_code):
    code = OS_ERROR + (
        "import os\n"
        "def main():\n"
        "    fds = []\n"
        "    def grab():\n"
        "        while True:\n"
        "            fds.append(os.open('/dev/null', os.O_RDONLY))\n"
        "    return [attempt(grab), len(fds)]\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.OK
    error, count = result.output
    assert error == "EMFILE" and count < 1024


def test_memory_bomb(run_code):
    result = run_code("def main():\n    hog = bytearray()\n    while True:\n        hog += b'x' * (16 << 20)\n", memory_mb=64)
    assert result.status == RunStatus.OOM_KILLED


def test_disk_bomb(run_code):
    code = OS_ERROR + (
        "def main():\n"
        "    def fill():\n"
        "        with open('/tmp/big', 'wb') as fh:\n"
        "            while True:\n"
        "                fh.write(b'z' * (1 << 20))\n"
        "    return attempt(fill)\n"
    )
    blocked(run_code(code, tmpfs_mb=4), "ENOSPC")


def test_swallowed_timeouts_and_ignored_signals(run_code):
    code = (
        "import signal, time\n"
        "def main():\n"
        "    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP):\n"
        "        signal.signal(sig, signal.SIG_IGN)\n"
        "    while True:\n"
        "        try:\n"
        "            time.sleep(0.05)\n"
        "        except BaseException:\n"
        "            pass\n"
    )
    assert run_code(code, timeout_seconds=2).status == RunStatus.TIMEOUT


def test_stdout_flood(run_code):
    result = run_code("import sys\ndef main():\n    while True:\n        sys.stdout.write('A' * 65536)\n", timeout_seconds=3, max_output_bytes=50_000)
    assert result.status == RunStatus.TIMEOUT
    assert result.stdout_truncated and len(result.stdout) == 50_000


def test_stderr_flood(run_code):
    result = run_code("import sys\ndef main():\n    sys.stderr.write('E' * 2_000_000)\n    return 1\n", max_output_bytes=50_000)
    assert result.status == RunStatus.OUTPUT_TRUNCATED
    assert result.stderr_truncated and result.output == 1


def test_detached_daemon_does_not_outlive_the_run(run_code, docker_client):
    code = (
        "import os, time\n"
        "def main():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        time.sleep(120)\n"
        "        os._exit(0)\n"
        "    return 'detached'\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.OK and result.output == "detached"
    # the autouse fixture asserts the container (and so the daemon) is gone


# --- forging the result channel ------------------------------------------------------


def test_forge_result_line_on_stdout(run_code):
    code = (
        "import json\n"
        "def main():\n"
        "    fake = json.dumps({'status': 'ok', 'output': 'forged'})\n"
        "    print('SKILLHARBOR-RESULT-v1 ' + 'a' * 64 + ' ' + fake)\n"
        "    raise RuntimeError('real failure')\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.EXCEPTION and result.output is None


def test_forge_result_through_init_stdout(run_code):
    # PID 1 (the supervisor, another uid) holds the container's real stdout: the
    # skill cannot open it, and were it written, the per-run nonce/MAC would make it worthless
    code = (
        "import errno, json\n"
        "def main():\n"
        "    fake = json.dumps({'status': 'ok', 'output': 'forged', 'stdout': '', 'stderr': ''})\n"
        "    try:\n"
        "        with open('/proc/1/fd/1', 'w') as out:\n"
        "            out.write('\\nSKILLHARBOR-RESULT-v1 ' + 'b' * 64 + ' ' + fake + '\\n')\n"
        "        opened = 'opened'\n"
        "    except OSError as exc:\n"
        "        opened = errno.errorcode[exc.errno]\n"
        "    raise RuntimeError('real failure, /proc/1/fd/1: ' + opened)\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.EXCEPTION and "real failure, /proc/1/fd/1: EACCES" in result.error


def test_read_the_job_back_from_init_stdin(run_code):
    # the job (with the nonce) was consumed by the supervisor before the skill started
    code = (
        "import os, select\n"
        "def main():\n"
        "    fd = os.open('/proc/1/fd/0', os.O_RDONLY | os.O_NONBLOCK)\n"
        "    try:\n"
        "        return os.read(fd, 65536).decode(errors='replace')\n"
        "    except BlockingIOError:\n"
        "        return ''\n"
    )
    result = run_code(code)
    assert result.status in (RunStatus.OK, RunStatus.EXCEPTION)
    assert "nonce" not in str(result.output)


def test_kill_the_supervisor(run_code):
    # the supervisor is PID 1: the kernel drops SIGKILL/SIGSTOP sent to it from inside the
    # container, so it survives and reports what the skill really did
    code = "import os, signal\ndef main():\n    os.kill(os.getppid(), signal.SIGKILL)\n    return ['still supervised', os.getppid()]\n"
    result = run_code(code)
    if under_gvisor(result):
        # gVisor 20221219 delivers it: the sandbox ends at once, and the skill gets no result at all (none forged)
        assert result.status == RunStatus.EXIT_NONZERO and result.output is None and "no result" in (result.error or "")
        return
    assert result.status == RunStatus.OK and result.output == ["still supervised", 1]


def test_freeze_the_supervisor(run_code):
    code = "import os, signal, time\ndef main():\n    os.kill(os.getppid(), signal.SIGSTOP)\n    time.sleep(60)\n    return 'took over'\n"
    result = run_code(code, timeout_seconds=1)
    assert result.status == RunStatus.TIMEOUT and result.output is None


# --- reading the host through devices and the kernel (added by the reliability sweep) --------


def test_read_host_block_devices_and_kernel_memory(run_code):
    code = OS_ERROR + (
        "import os\n"
        "def main():\n"
        "    devices = sorted(d for d in os.listdir('/dev') if d.startswith(('sd', 'vd', 'nvme', 'xvd', 'dm-', 'loop', 'mem', 'kmem', 'port')))\n"
        "    reads = {p: attempt(lambda p=p: open(p, 'rb').read(16)) for p in ('/proc/kcore', '/dev/mem', '/sys/firmware/dmi/tables/DMI')}\n"
        "    return {'devices': devices, 'reads': reads}\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.OK, result
    assert result.output["devices"] == []  # no host disk or memory device node exists in the container
    assert all(outcome != "succeeded" for outcome in result.output["reads"].values()), result.output


def test_cgroup_release_agent_escape(run_code):
    code = OS_ERROR + (
        "import glob\n"
        "def main():\n"
        "    targets = glob.glob('/sys/fs/cgroup/**/release_agent', recursive=True) + ['/sys/fs/cgroup/release_agent',\n"
        "               '/sys/fs/cgroup/notify_on_release', '/sys/fs/cgroup/cgroup.procs']\n"
        "    return sorted({attempt(lambda t=t: open(t, 'w').write('/tmp/x')) for t in targets})\n"
    )
    result = run_code(code)
    assert result.status == RunStatus.OK, result
    assert "succeeded" not in result.output, result.output  # cgroupfs is read-only: no release_agent trick
