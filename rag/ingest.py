"""Files -> Documents: formats, stable ids, titles, boilerplate marks, and warnings for bad input.

Single bad files never stop a run: they become ``Skipped`` records with a reason. Only a path that
does not exist at all is an ``IngestError``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from itertools import accumulate
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from .errors import IngestError
from .types import Document, Span

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}  # reStructuredText is plain text with underlined headings
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl"}
DOCUMENT_SUFFIXES = {".pdf", ".docx"}  # binary formats, read by rag.readers
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES | DOCUMENT_SUFFIXES
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

_BOILERPLATE = [
    re.compile(r"(?:\b|(?<=[a-z])(?=[RS]))(see also|read more|also read|related articles?|recommended reading)\s*:", re.I),
    re.compile(r"^\s*the post\b.*\bappeared first on\b", re.I),
    re.compile(r"^\s*(this (article|story) (was )?(originally )?(appeared|published)|originally published)\b", re.I),
]
# Bare "share"/"subscribe"/"advertisement" only as a whole line: "Share prices fell" is news, not boilerplate.
_SHORT_BOILERPLATE = re.compile(
    r"^\s*(?:(share( this| on| via)|subscribe( to| now)|sign up( for| to)?|follow us|click here|"
    r"tweet this|email this|print this|copyright ©|all rights reserved)\b|(share|subscribe|advertisement)\W*$)",
    re.I,
)


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(frozen=True)
class Warned:
    source: str
    message: str


@dataclass(frozen=True)
class Unchanged:
    """A file whose size, modification time and inode match what the index recorded: not read again."""

    source: str


Event = Document | Skipped | Warned | Unchanged

RACY_NS = 2_000_000_000  # a file modified this recently may change again within the same timestamp: never trust its stat


def file_signature(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


# Every pattern above needs one of these words (case-insensitive), so a text without any of them has no
# boilerplate and skips the per-line regexes (~100 ns per character). Characters that re.IGNORECASE folds
# onto ASCII letters but str.lower() does not (long s, Kelvin sign, dotted and dotless i) take the full path.
_MARKERS = ("see also", "read more", "also read", "related article", "recommended reading", "appeared first on",
            "this article", "this story", "originally published")
_LINE_MARKERS = ("share", "subscribe", "sign up", "follow us", "click here", "advertisement", "tweet this",
                 "email this", "print this", "copyright \u00a9", "all rights reserved")
_FOLDS = "\u017f\u212a\u0130\u0131"


def _starts_with_marker(line: str) -> bool:
    """Whether a lower-cased, left-stripped line starts with a line marker as a whole word ("shares" does not)."""
    for k in _LINE_MARKERS:
        if line.startswith(k):
            nxt = line[len(k):len(k) + 1]
            if not k[-1].isalnum() or not nxt or not (nxt.isalnum() or nxt == "_"):
                return True
    return False


def _may_have_boilerplate(text: str) -> bool:
    if any(c in text for c in _FOLDS):
        return True
    low = text.lower()
    if any(k in low for k in _MARKERS):
        return True
    return any(k in low for k in _LINE_MARKERS) and any(_starts_with_marker(line.lstrip()) for line in low.splitlines())


def boilerplate_spans(text: str) -> list[Span]:
    """Whole lines that are syndication boilerplate ('See also:', 'The post ... appeared first on', share lines)."""
    if not _may_have_boilerplate(text):
        return []
    lines = text.splitlines(keepends=True)
    if any(c in text for c in _FOLDS):
        return _boilerplate_lines(lines, range(len(lines)), list(accumulate(map(len, lines), initial=0)))
    # Only a line that contains a marker word can match a pattern: find those lines, run the patterns on them.
    # (str.lower() keeps offsets: the one character it lengthens, U+0130, took the branch above.)
    low = text.lower()
    starts = list(accumulate(map(len, lines), initial=0))
    candidates: set[int] = set()
    for marker in _MARKERS + _LINE_MARKERS:
        at = low.find(marker)
        while at >= 0:
            candidates.add(bisect_right(starts, at) - 1)
            at = low.find(marker, at + 1)
    return _boilerplate_lines(lines, sorted(candidates), starts)


def _boilerplate_lines(lines: list[str], which: Iterable[int], starts: list[int]) -> list[Span]:
    spans: list[Span] = []
    for i in which:
        pos, body = starts[i], lines[i].rstrip("\r\n")
        hit = next((m for p in _BOILERPLATE if (m := p.search(body))), None)
        if hit:
            # A marker glued mid-line ("...Right NowRead more: ...") marks only the rest of the line.
            cut = hit.start() if body[:hit.start()].strip() else 0
            spans.append(Span(start=pos + cut, end=pos + len(body)))
        elif body.strip() and len(body) < 160 and _SHORT_BOILERPLATE.match(body):
            spans.append(Span(start=pos, end=pos + len(body)))
    return spans


_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+_.:])\1+$")  # reStructuredText title over/underlines


def _title_of(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line and not _ADORNMENT.match(line):
            return line if len(line) <= 120 else line[:117].rstrip() + "..."
    return ""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_document(text: str, *, doc_id: str, source: str, title: str | None = None,
                  date: str | None = None, url: str | None = None, pages: list[int] | None = None) -> Document:
    return Document(
        id=doc_id, source=source, title=title or _title_of(text), text=text, sha256=_sha(text),
        date=date, url=url, boilerplate=boilerplate_spans(text), pages=pages,
    )


class _HTMLText(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section",
              "article", "header", "footer", "blockquote", "pre", "table", "hr", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title = ""
        self.in_title = False
        self.date: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in self._SKIP:
            self.skip += 1
        if tag == "meta":
            a = dict(attrs)
            if (a.get("property") or a.get("name") or "") in {"article:published_time", "date", "pubdate"}:
                self.date = (a.get("content") or "")[:10] or None
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in self._SKIP and self.skip:
            self.skip -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str, str | None]:
    """Visible text (scripts and styles dropped), the <title>, and a published date if present."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [re.sub(r"[ \t\f\v\r]+", " ", ln).strip() for ln in "".join(parser.parts).split("\n")]
    text = "\n".join(ln for ln in lines if ln)
    return text, parser.title.strip(), parser.date


_NOT_CONTROLS = bytes(b for b in range(256) if not (b < 32 and b not in (9, 10, 12, 13)))


def _looks_binary(raw: bytes) -> bool:
    head = raw[:8192]
    if b"\x00" in head:
        return True
    controls = len(head.translate(None, _NOT_CONTROLS))  # C speed: delete everything but control bytes
    return bool(head) and controls / len(head) > 0.05


def _decode(raw: bytes, source: str) -> tuple[str, Warned | None]:
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        return raw.decode("utf-8", errors="replace"), Warned(source, f"invalid UTF-8 at byte {err.start}; decoded with replacement characters")


def _has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_jsonl(text: str, source: str) -> Iterator[Event]:
    """One document per line; a bad line is skipped with its reason, never the whole file."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            yield Skipped(where, f"broken jsonl line: {err.msg}")
            continue
        except RecursionError:
            yield Skipped(where, "jsonl line nested too deeply")
            continue
        except ValueError as err:  # e.g. a number of more than 4300 digits
            yield Skipped(where, f"unreadable jsonl line: {str(err).split(';')[0][:100]}")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
            yield Skipped(where, "jsonl line has no non-empty 'text' string")
            continue
        meta = {k: (obj[k] if isinstance(obj.get(k), str) else None if obj.get(k) is None else json.dumps(obj[k]))
                for k in ("title", "url", "date", "id")}
        bad = [k for k, v in [("text", obj["text"]), *meta.items()] if isinstance(v, str) and _has_lone_surrogate(v)]
        if bad:
            yield Skipped(where, f"jsonl line has an invalid \\u escape (a lone surrogate) in {', '.join(map(repr, bad))}")
            continue
        yield make_document(obj["text"], doc_id=meta["id"] or where, source=where, title=meta["title"],
                            date=meta["date"], url=meta["url"])


def read_file(path: Path, source: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Event]:
    """Documents from one file, or the reason it was skipped."""
    kind = special_kind(path)
    if kind:
        yield Skipped(source, f"{kind}, not a regular file")
        return
    if path.is_dir():
        yield Skipped(source, "unreadable directory")
        return
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        yield Skipped(source, f"unsupported file type {suffix or '(none)'}")
        return
    try:
        size = path.stat().st_size
        if size > max_bytes:
            yield Skipped(source, f"file too large ({size / 2**20:.1f} MiB > {max_bytes / 2**20:.1f} MiB limit)")
            return
        raw = path.read_bytes()
    except OSError as err:
        yield Skipped(source, f"unreadable: {err.strerror or err}")
        return
    yield from read_bytes(raw, suffix, source)


def read_bytes(raw: bytes, suffix: str, source: str) -> Iterator[Event]:
    """Documents from the bytes of one file of type ``suffix`` (also used for HTTP uploads)."""
    suffix = suffix.lower()
    if suffix not in SUPPORTED:
        yield Skipped(source, f"unsupported file type {suffix or '(none)'}")
        return
    if not raw.strip():
        yield Skipped(source, "empty file")
        return
    if suffix in DOCUMENT_SUFFIXES:
        yield from _read_document(raw, suffix, source)
        return
    if _looks_binary(raw):
        yield Skipped(source, "binary file")
        return
    text, warning = _decode(raw, source)
    if warning:
        yield warning
    if suffix in JSONL_SUFFIXES:
        yield from _read_jsonl(text, source)
        return
    title = date = None
    if suffix in HTML_SUFFIXES:
        text, title, date = html_to_text(text)
        if not text.strip():
            yield Skipped(source, "HTML has no visible text")
            return
    yield make_document(text, doc_id=source, source=source, title=title or None, date=date)


def _read_document(raw: bytes, suffix: str, source: str) -> Iterator[Event]:
    """A PDF (text per page, page offsets kept) or a .docx (headings as '#' lines)."""
    from .readers import read_docx, read_pdf

    try:
        extracted = read_pdf(raw) if suffix == ".pdf" else read_docx(raw)
    except IngestError as err:
        yield Skipped(source, str(err))
        return
    for message in extracted.warnings:
        yield Warned(source, message)
    if not extracted.text.strip():
        yield Skipped(source, f"{suffix[1:].upper()} has no text")
        return
    yield make_document(extracted.text, doc_id=source, source=source, title=extracted.title or None, pages=extracted.pages)


def special_kind(path: Path) -> str | None:
    """What a path is when it is neither a regular file nor a directory ("FIFO", "device", ...), else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` in a stable order, streamed directory by directory (no list of every path)."""
    if not root.is_dir():
        yield root
        return
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            yield directory  # reported as unreadable
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir and not entry.is_symlink():
                subdirs.append(path)
            elif is_dir:
                continue  # symlinked directories are not followed (no cycles), as before
            else:
                # Dangling symlinks and special files are yielded so they are reported, not silently dropped.
                yield path
        stack.extend(reversed(subdirs))


def source_prefix(root: Path) -> str:
    """The source prefix of every document found under ``root`` (used by --prune)."""
    root = root.resolve()
    return root.name if root.is_file() else root.name + "/"


def iter_documents(paths: Iterable[Path], *, max_bytes: int = DEFAULT_MAX_BYTES,
                   unchanged: Callable[[str, str], bool] | None = None,
                   signatures: dict[str, str] | None = None) -> Iterator[Event]:
    """Walk files and directories (recursively, hidden files skipped) and yield documents and warnings.

    A document's source and id are its path relative to the parent of the path given
    (``rag index seeds/`` gives ``seeds/a.txt``), so ids are stable wherever the command runs;
    jsonl documents take their ``id`` field when present.

    With ``unchanged`` (source, file signature -> bool), a file it accepts is not read: an ``Unchanged``
    event stands for it. With ``signatures``, the signature of each file read is recorded there by
    source (taken before reading, and left out when the file was modified in the last two seconds).
    """
    seen: set[str] = set()
    for root in paths:
        if not root.exists():
            raise IngestError(f"no such file or directory: {root}")
        root = root.resolve()
        for path in _walk(root):
            source = path.relative_to(root.parent).as_posix()
            if unchanged is not None or signatures is not None:
                try:
                    st = path.stat()
                except OSError:
                    st = None
                if st is not None and stat.S_ISREG(st.st_mode) and source not in seen:
                    signature = file_signature(st)
                    if unchanged is not None and unchanged(source, signature):
                        seen.add(source)
                        yield Unchanged(source)
                        continue
                    if signatures is not None and st.st_mtime_ns < time.time_ns() - RACY_NS:
                        signatures[source] = signature
            for event in read_file(path, source, max_bytes=max_bytes):
                if isinstance(event, Document):
                    if event.id in seen:
                        yield Skipped(event.source, f"duplicate document id {event.id!r}")
                        continue
                    seen.add(event.id)
                yield event


@dataclass
class IngestReport:
    indexed: int = 0
    unchanged: int = 0
    replaced: int = 0
    pruned: int = 0
    chunks: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Warned] = field(default_factory=list)
