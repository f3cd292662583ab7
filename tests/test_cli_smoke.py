"""End-to-end: the real CLI indexes the seed article and finds the right chunk."""

from conftest import SEED_FILE, run_cli


def test_index_then_search_finds_prescription_delivery(seeded_index):
    result = run_cli("search", "prescription delivery", "--json")
    assert result.returncode == 0, result.stderr
    import json

    hits = json.loads(result.stdout)
    assert hits, "no hits"
    top = hits[0]
    assert top["source"].endswith(SEED_FILE.name)
    assert "same-day prescription delivery" in top["chunk"]["text"]
    original = SEED_FILE.read_text(encoding="utf-8")
    assert original[top["chunk"]["start"]:top["chunk"]["end"]] == top["chunk"]["text"]
