"""Shared fixtures: every test gets its own index path; nothing touches the working tree or ~."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = next(SEEDS.glob("*.txt"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("RAG_", "OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index.db"))


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "index.db"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `rag` CLI in a subprocess."""
    full_env = {k: v for k, v in os.environ.items()} | (env or {})
    return subprocess.run([sys.executable, "-m", "rag", *args], cwd=cwd or ROOT, env=full_env, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def seeded_index(index_path: Path) -> Path:
    result = run_cli("index", str(SEEDS))
    assert result.returncode == 0, result.stderr
    return index_path
