"""A throwaway PostgreSQL server of a test's own (the suite's shared one cannot be restarted or reconfigured)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


class Cluster:
    """A throwaway PostgreSQL server on 127.0.0.1 that the test may stop and restart."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            if os.environ.get("CI"):
                pytest.fail("CI is set but no PostgreSQL server is installed (scripts/test.sh installs it)")
            pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql")
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(
            prefix="bimpl-pgfault-"
        )  # not under pytest's 0700 tmp: postgres must enter
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.log = Path(self.dir) / "log"
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.pg(f"{self.bin}/initdb -D {self.dir}/data -U postgres --auth=trust -E UTF8 --no-sync")

    def pg(self, command: str) -> None:
        # initdb and pg_ctl refuse to run as root.
        argv = (
            ["su", "postgres", "-s", "/bin/sh", "-c", command] if os.getuid() == 0 else ["sh", "-c", command]
        )
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"

    def ctl(self, action: str, settings: str = "") -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off {settings}"
        self.pg(f"{self.bin}/pg_ctl -D {self.dir}/data -w -m fast -l {self.dir}/log -o '{options}' {action}")

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.pg(f"{self.bin}/pg_ctl -D {self.dir}/data -m immediate stop")
        shutil.rmtree(self.dir, ignore_errors=True)
