"""Run a command inside an imitation of moodbox.service's sandbox, without systemd as PID 1.

    python tests/sandbox.py COMMAND...      (as root; Linux >= 6.3 for the memory rule)

What it imitates, from systemd/moodbox.service:
- SystemCallFilter= (the unit's allow list, expanded by ``systemd-analyze syscall-filter``) with
  SystemCallErrorNumber=EPERM, through libseccomp as systemd builds it;
- MemoryDenyWriteExecute=yes, through the kernel's prctl(PR_SET_MDWE), which refuses the same mappings;
- ProtectProc=invisible (and ProcSubset=pid if the unit sets it), by mounting a private /proc;
- NoNewPrivileges=yes.
The unit's other settings (users, devices, IP filters) need systemd itself; see docs/operations.md.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

# MOODBOX_SANDBOX_UNIT names another unit of systemd/ (moodbox-library-scan.service)
UNIT = Path(__file__).resolve().parents[1] / "systemd" / os.environ.get("MOODBOX_SANDBOX_UNIT", "moodbox.service")
PR_SET_NO_NEW_PRIVS, PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 38, 65, 1
SCMP_ACT_ALLOW = 0x7FFF0000


def _setting(name: str) -> str | None:
    found = re.findall(rf"^{name}=(.*)$", UNIT.read_text(), re.M)
    return found[-1].strip() if found else None


def _expand(entry: str) -> set[str]:
    if not entry.startswith("@"):
        return {entry}
    out = subprocess.run(["systemd-analyze", "syscall-filter", entry], capture_output=True, text=True, check=True).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            names |= _expand(line)
    return names


def allowed_syscalls(unit: str) -> set[str]:
    """The unit's SystemCallFilter= lines, applied in order as systemd applies them."""
    allowed: set[str] = set()
    for value in re.findall(r"^SystemCallFilter=(.*)$", unit, re.M):
        deny = value.startswith("~")
        names = set().union(*(_expand(e) for e in value.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    return allowed


def _seccomp(allowed: set[str]) -> None:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(0x00050000 | errno.EPERM)  # SCMP_ACT_ERRNO(EPERM): SystemCallErrorNumber=EPERM
    for name in sorted(allowed):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0:  # names this architecture lacks are skipped, as systemd skips them
            assert lib.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) == 0, name
    assert lib.seccomp_load(ctx) == 0, "seccomp_load failed"


def main(argv: list[str]) -> None:
    if os.environ.get("_MOODBOX_SANDBOX") != "1":  # first pass: a private mount namespace with a /proc subset
        os.environ["_MOODBOX_SANDBOX"] = "1"
        subset = ",subset=pid" if _setting("ProcSubset") == "pid" else ""
        mount = f"mount -t proc -o hidepid=invisible{subset} proc /proc"
        os.execvp(
            "unshare",
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'{mount} && exec "$0" "$@"',
                sys.executable,
                __file__,
                *argv,
            ],
        )
    allowed = allowed_syscalls(UNIT.read_text())
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    assert libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    if _setting("MemoryDenyWriteExecute") == "yes":
        assert libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0, "this kernel has no PR_SET_MDWE"
    _seccomp(allowed)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
