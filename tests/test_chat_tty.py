"""`rag chat` on a real terminal (a pseudo-terminal): prompt loop, commands, Ctrl-C and Ctrl-D."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT


class Terminal:
    def __init__(self, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        # A shell that starts us in the background ignores SIGINT, and children inherit that: restore it,
        # as a terminal would have it.
        self.proc = subprocess.Popen([sys.executable, "-m", "rag", "chat"], stdin=slave, stdout=slave, stderr=slave,
                                     cwd=ROOT, env=env, close_fds=True, start_new_session=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        os.close(slave)
        self.buffer = ""

    def read_until(self, marker: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while marker not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"did not see {marker!r}; screen so far:\n{self.buffer}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.buffer += os.read(self.master, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            os.close(self.master)


@pytest.fixture
def terminal(seeded_index):
    term = Terminal(dict(os.environ))
    yield term
    if term.proc.poll() is None:
        term.proc.kill()


def test_chat_session_on_a_terminal(terminal):
    banner = terminal.read_until("> ")
    assert "rag chat (offline" in banner and "/sources" in banner
    terminal.send("What is Amazon's model?\r")
    answer = terminal.read_until("\n> ")
    assert "Build technological layers" in answer and "Sources:" in answer
    terminal.send("And Walmart?\r")
    follow = terminal.read_until("\n> ")
    assert "understood as: What is Walmart's model?" in follow and "service network" in follow
    terminal.send("/sources\r")
    sources = terminal.read_until("\n> ")
    assert "[1] seeds/" in sources
    # Ctrl-C at the prompt does not end the session. Python's readline notices a signal only while it
    # waits in select(); give it a moment to get there after drawing the prompt, as a person would.
    time.sleep(0.5)
    terminal.proc.send_signal(signal.SIGINT)
    terminal.read_until("\n> ")
    assert terminal.proc.poll() is None
    terminal.send("/reset\r")
    assert "Conversation reset." in terminal.read_until("\n> ")
    terminal.send("/help\r")
    assert "/exit" in terminal.read_until("\n> ")
    terminal.send("\x04")  # Ctrl-D
    assert terminal.close() == 0
