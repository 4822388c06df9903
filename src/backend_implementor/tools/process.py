"""Bounded capture of a command's output for the bash tool."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque


class OutputCapture:
    """Reads a pipe on a thread, keeping the head and the tail of the output within a byte budget.

    Memory stays bounded however much a command prints; `render` shows what was dropped in between.
    """

    def __init__(self, stream, head_bytes: int = 10_000, tail_bytes: int = 10_000, max_lines: int = 400):
        self._stream = stream
        self._max_lines = max_lines
        self._head_limit = head_bytes
        self._tail_limit = tail_bytes
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._dropped_bytes = 0
        self._dropped_newlines = 0
        self._before_tail = b""  # the byte just before the kept tail: is the tail's first line whole?
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        fd = self._stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self._feed(chunk)
        with contextlib.suppress(OSError):
            self._stream.close()

    def _feed(self, chunk: bytes) -> None:
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
            old = self._tail.popleft()
            self._tail_size -= len(old)
            self._dropped_bytes += len(old)
            self._dropped_newlines += old.count(b"\n")
            self._before_tail = old[-1:]

    def join(self, timeout: float | None = None) -> bool:
        """Wait for end of output. False if the pipe is still held open (by an escaped process)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def render(self) -> str:
        """The output, with the middle replaced by `... N lines elided (B bytes) ...` when too long."""
        head = bytes(self._head)
        tail = b"".join(self._tail)
        dropped_bytes, dropped_newlines = self._dropped_bytes, self._dropped_newlines
        before_tail = self._before_tail
        if len(tail) > self._tail_limit:
            cut = len(tail) - self._tail_limit
            before_tail = tail[cut - 1 : cut]
            dropped_bytes += cut
            dropped_newlines += tail[:cut].count(b"\n")
            tail = tail[cut:]
        if dropped_bytes:
            # Cut at line boundaries so the model sees whole lines on both sides of the gap.
            end = head.rfind(b"\n") + 1 or min(len(head), 2000)  # one huge line: keep its start
            start = 0 if before_tail == b"\n" else (tail.find(b"\n") + 1 or max(0, len(tail) - 2000))
            dropped_bytes += len(head) - end + start
            dropped_newlines += tail[:start].count(b"\n")
            head_lines, tail_lines_ = head[:end].splitlines(True), tail[start:].splitlines(True)
        else:
            head_lines, tail_lines_ = (head + tail).splitlines(True), []
        # Many short lines fit the byte budget but still flood the context: cap the line count too.
        both = head_lines + tail_lines_
        if len(both) > self._max_lines:
            keep_head = self._max_lines // 2
            extra = both[keep_head : len(both) - (self._max_lines - keep_head)]
            dropped_bytes += sum(len(line) for line in extra)
            dropped_newlines += sum(line.count(b"\n") for line in extra)
            head_lines, tail_lines_ = both[:keep_head], both[len(both) - (self._max_lines - keep_head) :]
        elif not dropped_bytes:
            return (head + tail).decode("utf-8", errors="replace")
        text_head = b"".join(head_lines).decode("utf-8", errors="replace").rstrip("\n")
        text_tail = b"".join(tail_lines_).decode("utf-8", errors="replace")
        lines = f"{dropped_newlines} line{'' if dropped_newlines == 1 else 's'}"
        return f"{text_head}\n... {lines} elided ({dropped_bytes:,} bytes) ...\n{text_tail}"
