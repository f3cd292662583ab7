"""What every command promises on the command line: `--json` that parses, `--version`, one-line errors for a
missing index, real dates, chat slash commands on a pipe, RAG_HOME, and output files with the umask's mode."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS, run_cli
from servers import serve_process

pytestmark = pytest.mark.slow


def _parses(stdout: str) -> object:
    return json.loads(stdout)


@pytest.mark.parametrize("args", [
    ("index", str(SEEDS)), ("stats",), ("search", "walmart"), ("ask", "What is Walmart's model?"), ("summarize",),
    ("migrate",), ("schema",), ("schema", "Answer"), ("config",),
    ("eval", str(ROOT / "evals" / "qa_seed.yaml"), "--case", "walmart-model"),
], ids=lambda a: "-".join(a[:2]).replace("/", "_")[:30])
def test_every_command_json_parses(seeded_index: Path, args: tuple[str, ...]) -> None:
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert _parses(result.stdout) is not None


def test_brief_json_parses(seeded_index: Path, tmp_path: Path) -> None:
    result = run_cli("brief", str(SEEDS), "--out", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    assert _parses(result.stdout)["summarized"] == 1


def test_chat_json_on_a_pipe_is_one_object_per_line(seeded_index: Path) -> None:
    result = run_cli("chat", "--json", input="What is Walmart's model?\n/sources\n/help\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["citations"] and lines[1]["command"] == "/sources"
    assert lines[1]["citations"] == lines[0]["citations"] and lines[2]["command"] == "/help"


def test_serve_json_first_line_parses(seeded_index: Path) -> None:
    with serve_process(seeded_index) as (_, url):
        assert url.startswith("http://127.0.0.1:")  # serve_process read it from the --json line


def test_config_json_shows_paths_as_strings() -> None:
    result = run_cli("config", "--json")
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert isinstance(settings["index"], str) and settings["api_keys"] == "(set)"


def test_version() -> None:
    from rag import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rag {__version__}"


@pytest.mark.parametrize("args", [("serve", "--port", "0"), ("ask", "anything"), ("search", "x"), ("stats",),
                                  ("chat",), ("summarize",), ("migrate",)])
def test_only_rag_index_creates_an_index(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "typo.db"
    result = run_cli("--index", str(missing), *args, input="")
    assert result.returncode == 1
    assert result.stderr == f"rag: error: no index at {missing} (create it with `rag index PATHS`, or pass --index)\n"
    assert not missing.exists()


@pytest.mark.parametrize("date", ["2024-13-01", "2024-02-30", "24-01-01", "yesterday"])
def test_dates_are_validated_as_dates(seeded_index: Path, date: str) -> None:
    result = run_cli("search", "walmart", "--since", date)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and f"not a valid date: '{date}'" in result.stderr


def test_schema_without_a_name_lists_the_names() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    assert "Answer" in result.stdout and "StrategySummary" in result.stdout and "{" not in result.stdout
    assert set(json.loads(run_cli("schema", "--json").stdout)) >= {"Answer", "Citation", "Briefing"}


def test_chat_on_a_pipe_takes_the_same_slash_commands(seeded_index: Path) -> None:
    result = run_cli("chat", input="/sources\nWhat is Walmart's model?\n/sources\n/reset\n/sources\n/bogus\n/exit\nWhat is Amazon's model?\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "No sources for the last answer."  # not asked as a question
    assert out[1].startswith("Turn physical scale into a service network")
    assert out[2] == "Sources:" and out[3].startswith("  [1] seeds/") and "Turn physical scale" in out[4]
    assert "Conversation reset." in out and out.count("No sources for the last answer.") == 2
    assert any(line.startswith("Unknown command /bogus.") for line in out)
    assert "Amazon" not in result.stdout  # /exit ended the chat


def test_rag_home_holds_the_default_index_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_INDEX")
    home = tmp_path / "home"
    env = {"RAG_HOME": str(home)}
    result = run_cli("index", str(SEEDS), "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["index"] == str(home / "index.db") and (home / "index.db").is_file()
    assert not (tmp_path / ".rag").exists()
    config = json.loads(run_cli("config", "--json", cwd=tmp_path, env=env).stdout)
    assert config["home"] == str(home) and config["index"] == str(home / "index.db")
    assert config["cache_path"] == str(home / "cache.db")
    text = run_cli("config", cwd=tmp_path, env=env).stdout
    assert any(line.startswith("home ") and "RAG_HOME" in line for line in text.splitlines())
    assert run_cli("ask", "What is Walmart's model?", cwd=tmp_path, env=env).returncode == 0
    # --index and RAG_INDEX still win
    other = tmp_path / "other.db"
    assert json.loads(run_cli("--index", str(other), "config", "--json", env=env).stdout)["index"] == str(other)
    assert json.loads(run_cli("config", "--json", env=env | {"RAG_INDEX": str(other)}).stdout)["index"] == str(other)


def test_rag_home_with_no_setting_keeps_state_in_the_working_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rag", "config", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(result.stdout)["index"] == ".rag/index.db" and json.loads(result.stdout)["home"] is None


def test_output_files_get_the_umask_mode(seeded_index: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)  # inherited by the subprocess
    try:
        result = run_cli("brief", str(SEEDS), "--out", str(tmp_path / "out"))
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    files = [tmp_path / "out" / "briefing.md", tmp_path / "out" / "briefing.json", *(tmp_path / "out" / "summaries").iterdir()]
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in files), \
        {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files}


def test_answers_read_as_clean_text_while_quotes_keep_the_source_lines(tmp_path: Path) -> None:
    docs = tmp_path / "manual"
    docs.mkdir()
    (docs / "ffi.txt").write_text(
        "libffi manual\n\n2.7 Thread Safety\nlibffi is not thread safe, and callers must hold a lock\n"
        "around every closure allocation.\n\n2.8 Portability\nIt runs on many architectures.\n", encoding="utf-8")
    assert run_cli("index", str(docs)).returncode == 0
    result = run_cli("ask", "Is libffi thread safe?", "--json")
    answer = json.loads(result.stdout)
    assert not answer["refused"], answer
    assert "\n" not in answer["answer"] and "2.7" not in answer["answer"]
    assert answer["answer"].startswith("libffi is not thread safe, and callers must hold a lock around every closure")
    quote = answer["citations"][0]["quote"]
    assert "\n" in quote  # as written in the source
    shown = run_cli("ask", "Is libffi thread safe?").stdout
    assert shown.count("callers must hold a lock") == 1 and "(quoted above)" in shown
