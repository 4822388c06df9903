from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from backend_implementor.processes import group_alive, kill_group
from backend_implementor.verify.proc import port_open

# The main thread ends (pthread_exit) while a second thread keeps a listening socket: the process's
# leader shows as a zombie in /proc, yet the port stays open until the whole thread group is gone.
ZOMBIE_LEADER = textwrap.dedent(
    """
    import ctypes, socket, sys, threading, time

    def serve():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        print(sock.getsockname()[1], flush=True)
        while True:
            time.sleep(1)

    threading.Thread(target=serve).start()
    time.sleep(0.3)
    ctypes.CDLL(None).pthread_exit(None)
    """
)


def leader_state(pid: int) -> bytes:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return stat[stat.rindex(b")") + 2 :].split()[0]


def test_zombie_leader_with_live_threads_counts_as_alive_until_killed(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(ZOMBIE_LEADER)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        port = int(proc.stdout.readline())
        deadline = time.monotonic() + 30
        while leader_state(proc.pid) != b"Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leader_state(proc.pid) == b"Z" and port_open("127.0.0.1", port)

        assert group_alive(proc.pid)
        assert kill_group(proc.pid, proc)
        assert not port_open("127.0.0.1", port)
        assert not group_alive(proc.pid)
    finally:
        kill_group(proc.pid, proc)
        proc.stdout.close()


def test_kill_group_reaches_children_and_reports_nothing_there_afterwards() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True)
    assert group_alive(proc.pid)
    assert kill_group(proc.pid, proc)
    assert not group_alive(proc.pid)
