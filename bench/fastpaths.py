"""Prototypes of the indexing speed-ups proposed for rag/, applied as monkeypatches for measurement only.

Each patch is meant to give exactly the same output as the function it replaces; ``check`` verifies
that on a corpus (documents, boilerplate spans, chunks and the normalized FTS text must be identical).
Nothing here is imported by rag/; ``index_bench.py --worker ours --patched 1`` applies them.

- P1 ``chunk._is_abbreviation``: look back at most 64 characters instead of regex-searching the
  paragraph from its start at every sentence end (quadratic in paragraph length).
- P2 ``ingest.boilerplate_spans``: the per-line regexes cost ~100 ns per character (case-insensitive
  alternations get no literal-prefix skip in ``re``). Substring tests on the lower-cased text for the
  marker words come first; only texts that contain one go through the original per-line patterns.
- P3 ``ingest._looks_binary``: count control bytes with ``bytes.translate`` instead of a Python loop.
- P4 ``normalize.normalize_for_index`` (as used by index.py): ``str.translate`` with a dict table
  costs a dict lookup per character (~45 ns); a regex finds the few characters to replace instead.
- P5 ``chunk.sentence_spans``: the two end-of-paragraph ``re.search(r"...$", slice)`` calls become
  last-character tests (same copy of the function otherwise).
- P6 ``ingest._walk``: walk folders lazily (sorted ``os.scandir`` per folder, hidden entries pruned)
  instead of materializing ``sorted(root.rglob("*"))``, ~350 bytes of Path objects per file; same order.
- P7 ``index.index_paths``: the cyclic garbage collector is off for the run (its passes re-scan the
  young pydantic objects; no reference cycles were found, and peak memory did not grow with it off).
"""

from __future__ import annotations

import gc
import os
import re
import unicodedata
from pathlib import Path

_CONTROLS = bytes(b for b in range(32) if b not in (9, 10, 12, 13))
_NOT_CONTROLS = bytes(b for b in range(256) if b not in _CONTROLS)

# Every boilerplate pattern in ingest.py needs one of these words (case-insensitive). Characters that
# re.IGNORECASE folds onto ASCII letters but str.lower() does not (long s, Kelvin sign, dotted/dotless i)
# send a text down the original path.
_KEYS = ("see also", "read more", "also read", "related article", "recommended reading", "appeared first on",
         "this article", "this story", "originally published")
_LINE_KEYS = ("share", "subscribe", "sign up", "follow us", "click here", "advertisement", "tweet this",
              "email this", "print this", "copyright \u00a9", "all rights reserved")
_FOLDS = "\u017f\u212a\u0130\u0131"


def _starts_with_marker(line: str) -> bool:
    """Whether a lower-cased, left-stripped line starts with a line marker as a whole word ("shares" does not)."""
    for k in _LINE_KEYS:
        if line.startswith(k):
            nxt = line[len(k):len(k) + 1]
            if not k[-1].isalnum() or not nxt or not (nxt.isalnum() or nxt == "_"):
                return True
    return False


def apply() -> None:
    from rag import chunk, index, ingest, normalize

    word_before = chunk._WORD_BEFORE
    abbrev = chunk._ABBREV

    def _is_abbreviation(text: str, dot: int) -> bool:
        m = word_before.search(text, max(0, dot - 64), dot + 1)
        if not m:
            return False
        word = m.group(1).lower().rstrip(".")
        return word in abbrev or (len(word) == 1 and word.isalpha())

    slow_boilerplate = ingest.boilerplate_spans

    def boilerplate_spans(text: str):
        if any(c in text for c in _FOLDS):
            return slow_boilerplate(text)
        low = text.lower()
        if any(k in low for k in _KEYS):
            return slow_boilerplate(text)
        if any(k in low for k in _LINE_KEYS) and any(_starts_with_marker(line.lstrip()) for line in low.splitlines()):
            return slow_boilerplate(text)
        return []

    def _looks_binary(raw: bytes) -> bool:
        head = raw[:8192]
        if b"\x00" in head:
            return True
        controls = len(head.translate(None, _NOT_CONTROLS))
        return bool(head) and controls / len(head) > 0.05

    table = {chr(k): ("" if v is None else v if isinstance(v, str) else chr(v)) for k, v in normalize.TABLE.items()}
    special = re.compile("[" + re.escape("".join(table)) + "]")

    def normalize_for_index(text: str) -> str:
        if text.isascii():
            return text
        return special.sub(lambda m: table[m.group()], unicodedata.normalize("NFKC", text))

    line = chunk._LINE
    sent_end = chunk._SENT_END
    strip = chunk._strip
    ends = frozenset(".!?\u2026\"'\u201d")

    def sentence_spans(text: str, start: int, end: int):
        lines = [(m.start() + start, m.end() + start) for m in line.finditer(text[start:end])]
        paras: list[list[int]] = []
        for ls, le in lines:
            s, e = strip(text, ls, le)
            if s == e:
                continue
            if paras and (text[paras[-1][1] - 1].isalnum() or text[paras[-1][1] - 1] in "_,;") and text[s].islower():
                paras[-1][1] = e
            else:
                paras.append([s, e])
        for ps, pe in paras:
            para = text[ps:pe]
            single_line = "\n" not in para
            heading = single_line and (para.startswith("#") or (len(para) < 100 and para[-1] not in ends))
            cut = 0
            for m in sent_end.finditer(para):
                nxt = para[m.end():m.end() + 1]
                if nxt and (nxt.islower() or nxt.isdigit()) or _is_abbreviation(para, m.start()):
                    continue
                s, e = strip(para, cut, m.end())
                if s < e:
                    yield ps + s, ps + e, False
                cut = m.end()
            s, e = strip(para, cut, len(para))
            if s < e:
                yield ps + s, ps + e, heading and cut == 0

    def _walk(root: Path):
        if root.is_file():
            yield root
            return

        def walk(folder: Path):
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except PermissionError:
                return
            for e in entries:
                if e.name.startswith("."):
                    continue
                p = folder / e.name
                if e.is_dir(follow_symlinks=False):
                    yield from walk(p)
                elif p.is_file() or (p.is_symlink() and not p.exists()):
                    yield p

        yield from walk(root)

    slow_index_paths = index.index_paths

    def index_paths(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return slow_index_paths(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    ingest._walk = _walk
    index.index_paths = index_paths
    chunk._is_abbreviation = _is_abbreviation
    chunk.sentence_spans = sentence_spans
    ingest.boilerplate_spans = boilerplate_spans
    ingest._looks_binary = _looks_binary
    index.normalize_for_index = normalize_for_index


def check(paths, limit: int | None = None) -> dict:
    """Run ingest+chunk+normalize without, then with the patches (left applied); count differences."""
    from rag import index, ingest

    def run():
        from rag.chunk import Chunker
        out = []
        ch = Chunker()
        for i, ev in enumerate(ingest.iter_documents(paths)):
            if limit and i >= limit:
                break
            if isinstance(ev, ingest.Document):
                cs = ch.chunk(ev)
                out.append((ev.model_dump(), [c.model_dump() for c in cs], [index.normalize_for_index(c.text) for c in cs]))
            else:
                out.append(repr(ev))
        return out

    before = run()
    apply()
    after = run()
    diffs = sum(1 for a, b in zip(before, after) if a != b) + abs(len(before) - len(after))
    return {"documents": len(before), "differences": diffs}
