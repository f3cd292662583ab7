"""Output for people: answers with numbered citations, and Markdown briefings and summaries with footnotes.

Everything shown comes from documents or models, so it is escaped for where it goes: Markdown gets
no raw HTML and no links (``md``), terminals get no control characters or escape sequences
(``terminal_safe``, applied by the CLI to everything it prints).
"""

from __future__ import annotations

import re

from .normalize import normalize
from .types import Answer, Briefing, Citation, CitedItem, Organisation, OrganisationProfile, StrategySummary

# ESC-introduced sequences (CSI ... final byte, OSC/DCS/APC/PM ... BEL or ST, two-character escapes),
# then any other C0 control but tab and newline, DEL, and C1 controls (U+0080-U+009F, e.g. CSI U+009B).
_ESCAPE_SEQ = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Text that cannot move the cursor, recolour, retitle or otherwise drive a terminal."""
    return _CONTROL.sub("", _ESCAPE_SEQ.sub("", text))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}<>|#~!])")


def md(text: str) -> str:
    """Document or model text for Markdown: one line, HTML and Markdown syntax inert (no tags, links, images,
    emphasis or table cells), so ``<script>``, ``onerror=`` and ``[x](javascript:...)`` stay visible text."""
    flat = " ".join(terminal_safe(text).split())
    flat = flat.replace("&", "&amp;")
    inert = _MD_SPECIAL.sub(lambda m: {"<": "&lt;", ">": "&gt;"}.get(m.group(1), "\\" + m.group(1)), flat)
    return inert.replace("](", "]\\(")  # no "](" left to pair with a bracket, even an escaped one


class _Footnotes:
    """Numbered citations. A note gives the quote only where the page does not already show it word for word
    (a sentence is never printed twice); the offsets stay in the JSON."""

    def __init__(self) -> None:
        self.cited: list[Citation] = []
        self.index: dict[tuple[str, int | None, int | None], int] = {}
        self.shown: list[str] = []

    def refs(self, citations: list[Citation], shown: str = "") -> str:
        if shown:
            self.shown.append(normalize(" ".join(shown.split())))
        marks = []
        for c in citations:
            key = (c.chunk_id, c.start, c.end)
            if key not in self.index:
                self.index[key] = len(self.cited) + 1
                self.cited.append(c)
            marks.append(f"[^{self.index[key]}]")
        return "".join(marks)

    def item(self, item: CitedItem, prefix: str = "") -> str:
        return f"- {prefix}{md(item.text)} {self.refs(item.citations, item.text)}".rstrip()

    def block(self) -> list[str]:
        notes = []
        for i, c in enumerate(self.cited, 1):
            quote = normalize(" ".join(c.quote.split()))
            tail = " (quoted above)" if any(quote in text for text in self.shown) else f': "{md(c.quote)}"'
            notes.append(f"[^{i}]: {md(c.source)}{page_label(c)}{tail}")
        return ["", "---", "", *notes] if notes else []


def _cell(text: str) -> str:
    return md(text) or " "


def _organisation_lines(org: Organisation, notes: _Footnotes, h: str) -> list[str]:
    lines = [f"{h} {md(org.name)}", ""]
    facts = []
    if org.aliases:
        facts.append("Also: " + ", ".join(md(a) for a in org.aliases))
    if org.people:
        facts.append("People: " + "; ".join(f"{md(p.name)}{f' ({md(p.role)})' if p.role else ''} {notes.refs(p.citations)}"
                                           for p in org.people))
    if facts:
        lines += [" · ".join(facts), ""]
    if org.thesis:
        lines += ["**Strategy**", ""] + [notes.item(t) for t in org.thesis] + [""]
    else:
        lines += [f"**Strategy.** No sentence of the sources states {md(org.name)}'s strategy outright.", ""]
    if org.moves:
        lines += ["**Moves**", ""] + [notes.item(m, f"**{md(m.date)}**: " if m.date else "") for m in org.moves] + [""]
    if org.results:
        lines += ["**Results**", ""] + [notes.item(r) for r in org.results] + [""]
    if org.figures:
        # Figures that one phrase states together ("revenue rose 11% to £214 million") share one row.
        rows: dict[str, list] = {}
        for f in org.figures:
            rows.setdefault(normalize(" ".join(f.text.split())).lower(), []).append(f)
        lines += ["**Figures**", "", "| figure | what of |", "|---|---|"]
        lines += [f"| {_cell('; '.join(f.value for f in fs))} | {_cell(fs[0].text)} "
                  f"{notes.refs(list({(c.chunk_id, c.start, c.end): c for f in fs for c in f.citations}.values()), fs[0].text)} |"
                  for fs in rows.values()] + [""]
    return lines


def _coverage_lines(organisations: list[OrganisationProfile]) -> list[str]:
    """Which documents say nothing about each organisation, as one table after the sections."""
    silent = [o for o in organisations if o.silent]
    if not silent:
        return []
    return ["## Coverage", "", "| organisation | not mentioned in |", "|---|---|"] + \
        [f"| {_cell(o.name)} | {_cell(', '.join(o.silent))} |" for o in silent] + [""]


def summary_markdown(summary: StrategySummary, *, notes: _Footnotes | None = None, level: int = 1) -> str:
    own = notes is None
    notes = notes or _Footnotes()
    h = "#" * level
    meta = md(summary.doc_id) + (f", {md(summary.date)}" if summary.date else "")
    lines = [f"{h} {md(summary.title or summary.doc_id)}", "", f"*Source: {meta}*", ""]
    for org in summary.organisations:
        lines += _organisation_lines(org, notes, h + "#")
    if summary.timeline:
        lines += [f"{h}# Timeline", "", "| date | event |", "|---|---|"]
        lines += [f"| {_cell(e.date or '')} | {_cell(e.text)} {notes.refs(e.citations, e.text)} |" for e in summary.timeline] + [""]
    for heading, items in (("Themes", summary.themes), ("What is at stake", summary.implications),
                           ("Open questions", summary.open_questions)):
        if items:
            lines += [f"{h}# {heading}", ""] + [notes.item(i) for i in items] + [""]
    if own:
        lines += notes.block()
    return "\n".join(lines).rstrip() + "\n"


def briefing_markdown(briefing: Briefing) -> str:
    notes = _Footnotes()
    lines = [f"# {md(briefing.title)}", ""]
    if briefing.executive_summary:
        lines += ["## Executive summary", ""] + [notes.item(i) for i in briefing.executive_summary] + [""]
    for org in briefing.organisations:
        lines += _organisation_lines(org, notes, "##")
    lines += _coverage_lines(briefing.organisations)
    if briefing.contrasts:
        lines += ["## Contrasts", ""] + [notes.item(c) for c in briefing.contrasts] + [""]
    if briefing.timeline:
        lines += ["## Timeline", "", "| date | organisation | event | source |", "|---|---|---|---|"]
        short = {o.name: min([o.name, *o.aliases], key=len) for o in briefing.organisations}
        lines += [f"| {_cell(e.date or '')} | {_cell(short.get(e.organisation or '', e.organisation or ''))} | {_cell(e.text)} "
                  f"{notes.refs(e.citations, e.text)} | {_cell(e.source)} |" for e in briefing.timeline] + [""]
    if briefing.themes:
        lines += ["## Themes", ""] + [notes.item(t) for t in briefing.themes] + [""]
    if briefing.implications:
        lines += ["## What is at stake", ""] + [notes.item(i) for i in briefing.implications] + [""]
    if briefing.open_questions:
        lines += ["## Open questions", ""] + [notes.item(q) for q in briefing.open_questions] + [""]
    if briefing.sources:
        lines += ["## Sources", ""]
        for s in briefing.sources:
            when = f", {md(s.date)}" if s.date else ""
            lines.append(f"- **{md(s.title or s.source)}** ({md(s.source)}{when})")
        lines.append("")
    if briefing.failures:
        lines += ["## Failures", "", "| source | reason |", "|---|---|"]
        lines += [f"| {md(f.source)} | {md(f.reason)} |" for f in briefing.failures] + [""]
    meta = f"*Generated by the {md(briefing.backend)} backend ({md(briefing.model)})"
    if briefing.prompt:
        meta += f" with the {md(briefing.prompt.name)} prompt"
    lines += [meta + ".*"]
    lines += notes.block()
    return "\n".join(lines).rstrip() + "\n"


_TERMINAL_PUNCT = re.compile(r"[.!?:;,\"'\u201d\u2019)\]]$")
_SECTION_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVXLC]+\.|[A-Z]\.)\s+\S")
_SMALL_WORDS = frozenset("a an and as at but by for from in of on or the to vs with".split())


def _is_heading_line(line: str) -> bool:
    """A line that titles what follows: '# ...', '2.7 Thread Safety', 'Thread Safety' (short, Title Case, unpunctuated)."""
    line = line.strip()
    if line.startswith("#"):
        return True
    if not line or len(line) > 80 or _TERMINAL_PUNCT.search(line):
        return False
    if _SECTION_NUMBER.match(line):
        return True
    words = [w for w in re.findall(r"[^\W\d_][\w'\u2019-]*", line) if w.lower() not in _SMALL_WORDS]
    return bool(words) and all(w[0].isupper() for w in words)


def clean_text(text: str) -> str:
    """Source text as prose: hard line breaks joined, heading lines that lead a paragraph dropped, one line.

    Quotes are shown as written; answers assembled from them read as text ("2.7 Thread Safety\nlibffi is
    not ..." becomes "libffi is not ...")."""
    paragraphs = [[ln.strip() for ln in para.splitlines() if ln.strip()] for para in re.split(r"\n[ \t\f\v\r]*\n", text)]
    paragraphs = [lines for lines in paragraphs if lines]
    kept = []
    for i, lines in enumerate(paragraphs):
        more_after = i + 1 < len(paragraphs)
        # Only a paragraph's first lines can be headings: a short Title Case line mid-paragraph is wrapped prose.
        while lines and _is_heading_line(lines[0]) and (len(lines) > 1 or more_after):
            lines = lines[1:]
        kept.append(" ".join(lines))
    return " ".join(" ".join(kept).split())


def quoted_in(answer: str, quote: str) -> bool:
    """True when ``answer`` already shows ``quote`` (perhaps without the heading lines it starts with).

    The web page (app.js ``quotedIn``) applies the same rule, so both show such a quote once."""
    said = normalize(answer)
    lines = quote.split("\n")
    for k, line in enumerate(lines):
        rest = normalize(" ".join(lines[k:]))
        if rest and rest in said:
            return True
        if len(line.strip()) > 80:
            return False
    return False


def page_label(citation: Citation) -> str:
    return f", p. {citation.page}" if citation.page is not None else ""


def sources_text(citations: list[Citation], *, answer: str = "") -> str:
    """Numbered sources; a quote is shown as written (its own line breaks), unless the answer already says it."""
    lines = ["Sources:"]
    for i, c in enumerate(citations, 1):
        shown = bool(answer) and quoted_in(answer, c.quote)
        lines.append(f"  [{i}] {c.source}{page_label(c)} (chunk {c.chunk_id.rsplit('#', 1)[-1]}, chars {c.start}-{c.end})"
                     + ("  (quoted above)" if shown else ""))
        if not shown:
            quote = "\n       ".join(ln.strip() for ln in c.quote.strip().splitlines() if ln.strip())
            lines.append(f"      \"{quote}\"")
    return "\n".join(lines)


def answer_text(answer: Answer) -> str:
    """An answer for a person: the text, warnings, then numbered citations with their quotes."""
    lines = [answer.answer]
    if answer.flags:
        lines.append("")
        lines += [f"! {flag}" for flag in answer.flags]
    if answer.dropped_citations:
        lines.append(f"! {answer.dropped_citations} citation(s) dropped: quote not found in the cited source, or source not retrieved")
    if answer.citations:
        lines += ["", sources_text(answer.citations, answer=answer.answer)]
    return "\n".join(lines)
