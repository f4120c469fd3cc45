"""Seeds in worker processes (lth_prune.execution.jobs): results in order, and workers die with their parent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lth_prune.execution.jobs import map_in_workers


def test_results_come_back_in_argument_order():
    assert map_in_workers(pow, [(2, 3), (3, 2), (5, 1)], workers=2) == [8, 9, 5]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has finished: it only waits for its (new) parent to reap it.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")
def test_workers_die_when_their_parent_is_killed(tmp_path):
    code = textwrap.dedent("""
        import time
        from lth_prune.execution.jobs import map_in_workers
        print("started", flush=True)
        map_in_workers(time.sleep, [(120,), (120,)], workers=2)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while len(workers) < 2 and time.monotonic() < deadline:
        # The pool's workers, not multiprocessing's resource tracker (which is not a pool worker).
        workers = [pid for pid in _children(parent.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
                   and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
        time.sleep(0.1)
    assert len(workers) == 2, "the pool did not start its workers"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    # A worker still importing torch when its parent dies has not armed its death signal yet;
    # it exits as its initializer runs, which a loaded 2-core machine took over 10 s to reach.
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived their parent"
