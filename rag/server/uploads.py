"""Uploads -> Documents, by the same rules as ``rag index`` (``ingest.read_bytes``).

The server chooses every id: ``uploads/<sanitized file name>`` (jsonl lines: ``...:<line or id>``).
Nothing the client sends becomes a path, and a jsonl ``id`` field cannot overwrite other documents.
Multipart bodies are parsed here with the standard library, so no extra dependency is needed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..ingest import SUPPORTED, Document, Skipped, Warned, read_bytes
from .errors import ApiError

PREFIX = "uploads/"
_UNSAFE = re.compile(r"[^\w.-]+")  # letters and digits of any script stay ("报告.txt")


def sanitize_filename(name: str) -> str:
    """A safe file name: last path component only, letters/digits/._-, no leading dots, <= 100 chars.

    The suffix is split off before anything is replaced, so a name made only of other characters
    still keeps its type (it becomes ``upload.txt``)."""
    base = re.split(r"[\\/]", name.strip())[-1]
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")  # no control or format characters
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = _UNSAFE.sub("", suffix).lower()[:10]
    stem = _UNSAFE.sub("_", stem).strip("._-")[:80] or "upload"
    return f"{stem}.{suffix}" if suffix else stem


def upload_id(name: str) -> str:
    return PREFIX + sanitize_filename(name)


@dataclass
class UploadResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Warned] = field(default_factory=list)


def documents_from_upload(filename: str, raw: bytes) -> UploadResult:
    """Documents in one uploaded file; ApiError 415 for an unsupported type, 422 when nothing is usable."""
    source = upload_id(filename)
    suffix = "." + source.rpartition(".")[2] if "." in source[len(PREFIX):] else ""
    if suffix not in SUPPORTED:
        raise ApiError(415, "unsupported_media_type",
                       f"{filename!r}: unsupported file type {suffix or '(none)'}; upload one of {', '.join(sorted(SUPPORTED))}",
                       field="filename")
    result = UploadResult()
    for event in read_bytes(raw, suffix, source):
        if isinstance(event, Skipped):
            result.skipped.append(event)
        elif isinstance(event, Warned):
            result.warnings.append(event)
        else:
            if event.id != source and not event.id.startswith(source + ":"):
                # A jsonl line's own id is kept only as a suffix under this upload.
                event = event.model_copy(update={"id": f"{source}:{_UNSAFE.sub('_', event.id)[:100]}"})
            result.documents.append(event)
    if not result.documents:
        reasons = "; ".join(f"{s.source}: {s.reason}" for s in result.skipped[:3]) or "no documents found"
        raise ApiError(422, "unusable_upload", f"nothing to index in {filename!r}: {reasons}", field="content")
    return result


# ------------------------------------------------------------------ multipart/form-data
def _boundary(content_type: str) -> bytes:
    m = re.search(r'boundary="?([^";]+)"?', content_type, re.I)
    if not m:
        raise ApiError(400, "bad_request", "multipart body without a boundary")
    return m.group(1).encode("latin-1")


def _disposition(headers: bytes) -> dict[str, str]:
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-disposition":
            text = value.decode("utf-8", "replace")
            return {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', text)}
    return {}


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """``(filename, bytes)`` of every file part; form fields without a filename are ignored."""
    delimiter = b"--" + _boundary(content_type)
    files: list[tuple[str, bytes]] = []
    parts = body.split(delimiter)
    if len(parts) < 3:
        raise ApiError(400, "bad_request", "malformed multipart body")
    for part in parts[1:-1]:
        part = part[2:] if part.startswith(b"\r\n") else part
        headers, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "bad_request", "malformed multipart part (no header/body separator)")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = _disposition(headers)
        if "filename" in disposition:
            files.append((disposition["filename"], content))
    if not files:
        raise ApiError(422, "validation_error", "file: no file part in the multipart body", field="file")
    ids = [upload_id(name) for name, _ in files]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        # Both would be reported indexed while the second silently replaced the first: refuse the upload.
        raise ApiError(422, "validation_error", f"file: two parts of one upload have the same name "
                       f"({', '.join(r[len(PREFIX):] for r in repeated)}); send each file once", field="file")
    return files
