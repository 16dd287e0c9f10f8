"""Runs the measured commands for run.py from a small process (stdlib only, no site).

Why: Linux keeps a process's peak RSS across ``execve`` and starts a forked child at its
parent's RSS, so a command spawned straight from the harness (which holds the emulator's
data) reports the harness's peak as its own ``ru_maxrss``. Spawned from this small process,
``os.wait4`` reports the command's own peak (floor: this process, about 10 MB).

Protocol: one JSON job per stdin line ``{"argv": [...], "stdout": path, "stderr": path}``;
one JSON answer per stdout line ``{"wall_s", "status", "user_s", "sys_s", "maxrss_kb"}``.
"""

import json
import os
import sys
import time


def run(job: dict) -> dict:
    """Spawn ``argv`` with stdin from /dev/null and stdout/stderr to files; wait for it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, job["stdout"], flags, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, job["stderr"], flags, 0o644),
    ]
    started = time.perf_counter()
    pid = os.posix_spawnp(job["argv"][0], job["argv"], dict(os.environ), file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "status": os.waitstatus_to_exitcode(status),
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "maxrss_kb": usage.ru_maxrss,
    }


def main() -> int:
    """Serve jobs until stdin closes."""
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(run(json.loads(line))) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
