"""Binary document formats -> text: PDF (pypdfium2, page by page) and Word .docx (python-docx, headings kept).

Each reader returns the text that is stored and quoted, and for PDFs the offset where each page
starts in it, so a citation's span maps to its page. A file that cannot be read raises
``IngestError`` with the reason; ``ingest`` turns it into a skipped file, never a stopped run.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass, field

from .errors import IngestError

PAGE_SEPARATOR = "\n\n"
# PDFium is not thread-safe (the server may ingest uploads on several threads): one extraction at a time.
_PDFIUM = threading.Lock()
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


@dataclass
class Extracted:
    text: str
    title: str = ""
    pages: list[int] | None = None  # offsets in ``text`` where each page starts (PDF only)
    warnings: list[str] = field(default_factory=list)


def _clean_page(text: str) -> str:
    """PDFium's page text: CRLF line ends, and control characters for hyphens and page breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "-")
    text = _CONTROLS.sub("", text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def _page_list(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def read_pdf(raw: bytes) -> Extracted:
    """Text of every page, joined by a blank line, with the start offset of each page."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(raw)
        except pdfium.PdfiumError as err:
            message = str(err)
            if "password" in message.lower():
                raise IngestError("encrypted PDF (needs a password); decrypt it first") from err
            reason = re.search(r"PDFium: ([^)]+)", message)
            raise IngestError(f"broken PDF ({(reason.group(1) if reason else message).strip().rstrip('.')})") from err
        try:
            texts: list[str] = []
            for i in range(len(pdf)):
                page = pdf[i]
                try:
                    textpage = page.get_textpage()
                    try:
                        texts.append(_clean_page(textpage.get_text_bounded()))
                    finally:
                        textpage.close()
                except pdfium.PdfiumError:
                    texts.append("")
                finally:
                    page.close()
            title = str((pdf.get_metadata_dict() or {}).get("Title") or "").strip()
        finally:
            pdf.close()
    if not texts:
        raise IngestError("PDF has no pages")
    empty = [i + 1 for i, t in enumerate(texts) if not t]
    if len(empty) == len(texts):
        raise IngestError(f"PDF has no text layer ({len(texts)} page(s) of images: scanned?); run OCR on it first")
    warnings = [f"{len(empty)} of {len(texts)} PDF pages have no text layer (page {_page_list(empty)}): "
                "not searchable"] if empty else []
    starts, parts, pos = [], [], 0
    for text in texts:
        starts.append(pos)
        parts.append(text)
        pos += len(text) + len(PAGE_SEPARATOR)
    return Extracted(text=PAGE_SEPARATOR.join(parts), title=title, pages=starts, warnings=warnings)


def read_docx(raw: bytes) -> Extracted:
    """Paragraphs and table rows in document order; headings become '#' lines (the chunker keeps them with
    the text under them), so a quote under a heading is found with its section."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as err:
        raise IngestError("not a readable .docx (broken, password-protected, or an old .doc)") from err
    except Exception as err:  # noqa: BLE001 - zipfile and lxml raise many types for a damaged package
        raise IngestError(f"broken .docx ({type(err).__name__})") from err
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = " ".join(block.text.split())
            if not text:
                continue
            style = (block.style.name if block.style is not None else "") or ""
            level = _heading_level(style)
            lines.append(("#" * level + " " + text) if level else text)
        elif isinstance(block, Table):
            for row in block.rows:
                cells = list(dict.fromkeys(" ".join(c.text.split()) for c in row.cells))
                if any(cells):
                    lines.append(" | ".join(cells))
    title = (document.core_properties.title or "").strip()
    return Extracted(text="\n\n".join(lines), title=title)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    m = re.fullmatch(r"Heading (\d)", style)
    return min(int(m.group(1)), 6) if m else 0
