"""The seccomp profile every skill container runs under.

Base: Docker Engine 20.10.24's default profile, kept verbatim as data in
``profiles/`` (provenance, upstream commit and hash in
``profiles/PROVENANCE.md``). The engine evaluates its ``includes``/``excludes``
(capabilities, architectures) against each container, exactly as it does for
its built-in default.

skillharbor's denials on top of it (``build_profile``):

* ``socket``: only ``AF_UNIX``, ``AF_INET`` and ``AF_INET6`` (loopback keeps
  working); every other family (``AF_VSOCK``, which reaches the VM host even
  with ``network_mode none``, ``AF_NETLINK``, ``AF_PACKET``, ``AF_ALG``,
  ``AF_BLUETOOTH``, ...) fails with ``EPERM``, the default action. Netlink is refused whole:
  glibc's ``getaddrinfo`` falls back when it cannot open a route socket, and
  with only ``lo`` there is nothing to read. The allow rules compare the full
  64-bit register, so a family smuggled in the upper bits matches no allow
  rule and falls to the default action.
* ``socketpair``: ``AF_UNIX`` only (the only family the kernel pairs anyway).
* ``socketcall`` (the 32-bit multiplexer, reachable from a 64-bit process
  through ``int 0x80``): refused, its arguments sit behind a pointer that
  seccomp cannot inspect, so the family rules above could be bypassed.
* ``io_uring_setup``/``io_uring_enter``/``io_uring_register``: refused; io_uring
  performs I/O outside the syscall path the filter sees and has been a steady
  source of kernel privilege escalations.
* ``mq_*`` (POSIX message queues): refused; their byte quota is per uid
  across the whole host, so one sandbox could starve every other one running
  as the same uid (the ``msgqueue`` ulimit of 0 and the empty ``/dev/mqueue``
  in ``sandbox.host_config`` close the file-system route to the same queues).

The profile is a separate piece: ``sandbox.host_config`` passes it as
``security_opt=["seccomp=<json>"]`` for runc. gVisor (``runsc``) ignores
Docker seccomp profiles and applies its own syscall surface; the doctor's
behavioural checks say what a given runtime actually refuses.
"""

from __future__ import annotations

import copy
import errno
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

BASE_PROFILE_PATH = Path(__file__).with_name("profiles") / "docker-20.10.24-seccomp-default.json"
BASE_PROFILE_SHA256 = "ce3585b856aa4a193671fd8280d0d0612a998bd3f10bdb2f8530dfa958c6197f"

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
ALLOWED_SOCKET_FAMILIES = {"AF_UNIX": AF_UNIX, "AF_INET": AF_INET, "AF_INET6": AF_INET6}
#: families named in the doctor and the tests (the rules refuse every number but the allowed three)
REFUSED_SOCKET_FAMILIES = {
    "AF_AX25": 3, "AF_IPX": 4, "AF_APPLETALK": 5, "AF_NETROM": 6, "AF_BRIDGE": 7, "AF_ATMPVC": 8, "AF_X25": 9,
    "AF_ROSE": 11, "AF_DECnet": 12, "AF_NETBEUI": 13, "AF_SECURITY": 14, "AF_KEY": 15, "AF_NETLINK": 16,
    "AF_PACKET": 17, "AF_ECONET": 19, "AF_ATMSVC": 20, "AF_RDS": 21, "AF_IRDA": 23, "AF_PPPOX": 24,
    "AF_WANPIPE": 25, "AF_LLC": 26, "AF_IB": 27, "AF_MPLS": 28, "AF_CAN": 29, "AF_TIPC": 30, "AF_BLUETOOTH": 31,
    "AF_IUCV": 32, "AF_RXRPC": 33, "AF_ISDN": 34, "AF_PHONET": 35, "AF_IEEE802154": 36, "AF_CAIF": 37,
    "AF_ALG": 38, "AF_NFC": 39, "AF_VSOCK": 40, "AF_KCM": 41, "AF_QIPCRTR": 42, "AF_SMC": 43, "AF_XDP": 44,
    "AF_MCTP": 45,
}  # fmt: skip
#: refused outright with EPERM (see the module docstring for why each)
REFUSED_SYSCALLS = (
    "socketcall",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
)  # fmt: skip
#: replaced by the argument-checked rules below
FILTERED_SYSCALLS = ("socket", "socketpair")


def _arg(index: int, op: str, value: int) -> dict[str, Any]:
    return {"index": index, "value": value, "valueTwo": 0, "op": op}


def _rule(name: str, action: str, *args: dict[str, Any], errno_ret: int | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"names": [name], "action": action, "args": list(args)}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    return rule


def _family_rules(name: str, allowed: list[int]) -> list[dict[str, Any]]:
    """Allow ``name`` only when its first argument is one of ``allowed``;
    every other value falls to the profile's default action (EPERM).

    One ALLOW rule per family and no refusing rules of their own: runc's
    libseccomp (2.5) rejects a syscall whose argument rules carry different
    actions ("file exists"), so a distinct EAFNOSUPPORT cannot be had."""
    return [_rule(name, "SCMP_ACT_ALLOW", _arg(0, "SCMP_CMP_EQ", family)) for family in sorted(allowed)]


def base_profile() -> dict[str, Any]:
    return json.loads(BASE_PROFILE_PATH.read_bytes())


def build_profile(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with skillharbor's denials (see the module docstring)."""
    profile = copy.deepcopy(base)
    removed = set(REFUSED_SYSCALLS) | set(FILTERED_SYSCALLS)
    syscalls = []
    for rule in profile.get("syscalls", []):
        if rule.get("action") == "SCMP_ACT_ALLOW":
            names = [n for n in rule.get("names", []) if n not in removed]
            if not names:
                continue
            rule = {**rule, "names": names}
        syscalls.append(rule)
    syscalls += _family_rules("socket", list(ALLOWED_SOCKET_FAMILIES.values()))
    syscalls += _family_rules("socketpair", [AF_UNIX])
    syscalls += [_rule(name, "SCMP_ACT_ERRNO", errno_ret=errno.EPERM) for name in REFUSED_SYSCALLS]
    profile["syscalls"] = syscalls
    return profile


@functools.lru_cache(maxsize=1)
def profile_json() -> str:
    """The profile as the compact JSON string the engine receives."""
    return json.dumps(build_profile(base_profile()), separators=(",", ":"), sort_keys=True)


def security_option() -> str:
    """The ``security_opt`` entry that applies the profile (runc)."""
    return "seccomp=" + profile_json()


def base_is_unmodified() -> bool:
    return hashlib.sha256(BASE_PROFILE_PATH.read_bytes()).hexdigest() == BASE_PROFILE_SHA256
