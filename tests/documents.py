"""Test documents made by the tests themselves (nothing binary is committed).

PDFs are HTML printed by headless Chromium (``--print-to-pdf``), one ``<section>`` per page; an
image-only PDF prints a page that holds nothing but a picture; an encrypted PDF is a text PDF
re-written by pypdf with a user password; Word files are written with python-docx.
"""

from __future__ import annotations

import base64
import html
import struct
import subprocess
import zlib
from pathlib import Path

from browser import CHROMIUM


def print_pdf(html_text: str, out: Path) -> Path:
    """``html_text`` printed to ``out`` by headless Chromium."""
    assert CHROMIUM is not None
    source = out.resolve().with_suffix(".src.html")
    source.write_text(html_text, encoding="utf-8")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--no-first-run", "--no-pdf-header-footer",
                    f"--user-data-dir={out.resolve().parent / '.chromium-profile'}", f"--print-to-pdf={out.resolve()}",
                    source.as_uri()], check=True, capture_output=True, timeout=120)
    source.unlink()
    assert out.read_bytes().startswith(b"%PDF"), f"chromium did not print {out}"
    return out


def pages_pdf(pages: list[str], out: Path, *, title: str = "") -> Path:
    """A PDF with one page per entry of ``pages`` (plain text paragraphs, blank-line separated)."""
    body = "".join(
        "<section style='break-after: page'>"
        + "".join(f"<p>{html.escape(p)}</p>" for p in page.split("\n\n")) + "</section>"
        for page in pages)
    head = f"<title>{html.escape(title)}</title>" if title else ""
    return print_pdf(f"<!doctype html><html><head><meta charset='utf-8'>{head}</head>"
                     f"<body style='font: 12pt serif'>{body}</body></html>", out)


def png(width: int = 48, height: int = 48) -> bytes:
    """A small solid-colour PNG, written by hand (zlib + CRCs): a picture with no text in it."""
    rows = b"".join(b"\x00" + bytes([180, 40, 40]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def image_only_pdf(out: Path, *, pages: int = 1) -> Path:
    """A 'scanned' PDF: each page holds only an image, so it has no text layer."""
    src = "data:image/png;base64," + base64.b64encode(png()).decode()
    body = "".join(f"<section style='break-after: page'><img src='{src}' style='width: 320px'></section>" for _ in range(pages))
    return print_pdf(f"<!doctype html><html><body style='margin: 0'>{body}</body></html>", out)


def encrypted_pdf(source: Path, out: Path, *, password: str = "s3cret") -> Path:
    """``source`` re-written by pypdf's writer with a user password (it cannot be opened without it)."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(source))
    writer.encrypt(user_password=password, owner_password=password + "-owner")
    with out.open("wb") as f:
        writer.write(f)
    return out


def word_docx(out: Path, *, title: str, sections: list[tuple[str, list[str]]]) -> Path:
    """A .docx written with python-docx: a heading per section, then its paragraphs."""
    import docx

    document = docx.Document()
    document.core_properties.title = title
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for text in paragraphs:
            document.add_paragraph(text)
    document.save(str(out))
    return out
