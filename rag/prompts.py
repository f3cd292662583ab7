"""Prompt templates in ``prompts/``: loaded by name, rendered strictly, identified by a hash.

Each file is ``prompts/<name>.j2``: a YAML front-matter header (name, version, schema, variables)
between ``---`` lines, then a Jinja2 body in sections that start with a line ``## system``,
``## user`` or ``## assistant``. Missing and extra variables are errors naming the template; every
rendered prompt carries ``name`` and the sha256 of the template file.

Structure never comes from data: the template *source* is cut into its role sections before
anything is rendered, and each section is rendered on its own, so no variable can add a message.
Every interpolated value is passed through ``neutralize`` (tag openers and entity-encoded tags
become look-alike characters, so no data can open or close a ``<source>`` block), and values
inside a tag attribute must go through the ``attr`` filter (a template that forgets it does not load).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta as jinja_meta

from .errors import ConfigError
from .types import PromptRef

PROMPTS_DIR = Path(os.environ.get("RAG_PROMPTS_DIR", Path(__file__).resolve().parent.parent / "prompts"))
_ROLE_MARK = "## "
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Template:
    name: str
    version: str
    schema: str | None
    variables: frozenset[str]
    body: str
    path: Path
    hash: str
    sections: tuple[tuple[str, str], ...] = ()  # (role, template source of that message)

    @property
    def ref(self) -> PromptRef:
        return PromptRef(name=self.name, hash=self.hash)


@dataclass(frozen=True)
class RenderedPrompt:
    ref: PromptRef
    schema: str | None
    messages: list[dict[str, str]]


# "<" that starts something tag-like, and the entity spellings of "<" and ">". The replacements are
# full-width forms, which the quote matcher folds back (NFKD), so a model's verbatim quote still verifies.
_TAG_OPEN = re.compile(r"<(?=\s*/?\s*[A-Za-z!?])")
_ENTITY = re.compile(r"&(?=(?:lt|gt|#0*6[02]|#x0*3[ce])\b;?)", re.I)


def neutralize(value: Any) -> Any:
    """What every ``{{ value }}`` in a template renders as: data that cannot open or close a block."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    return _ENTITY.sub("\uff06", _TAG_OPEN.sub("\uff1c", text))


def attr(value: Any) -> str:
    """A value for inside a double-quoted tag attribute: quotes, brackets, ampersands and newlines escaped."""
    text = " ".join(str(value).split())
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                          trim_blocks=True, lstrip_blocks=True, finalize=neutralize)
_ENV.filters["attr"] = attr
_RAW_ATTRIBUTE = re.compile(r"""=\s*"[^"\n]*\{\{(?![^}]*\|\s*attr\s*\}\})""")


def available(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or PROMPTS_DIR).glob("*.j2"))


@lru_cache(maxsize=64)
def load_template(name: str, directory: Path | None = None) -> Template:
    """Load and check ``prompts/<name>.j2``; any problem is a ConfigError naming the file."""
    directory = directory or PROMPTS_DIR
    path = directory / f"{name}.j2"
    if not path.is_file():
        raise ConfigError(f"unknown prompt {name!r}", hint=f"available in {directory}: {', '.join(available(directory)) or 'none'}")
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---\n") or "\n---\n" not in raw[4:]:
        raise ConfigError(f"{path}: missing '---' front-matter header (name, version, schema, variables)")
    head, body = raw[4:].split("\n---\n", 1)
    try:
        header = yaml.safe_load(head) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: bad front-matter header: {err}") from err
    if not isinstance(header, dict) or header.get("name") != name or "variables" not in header:
        raise ConfigError(f"{path}: header must give name: {name}, a version and the list of variables")
    try:
        parsed = _ENV.parse(body)
    except jinja2.TemplateSyntaxError as err:
        raise ConfigError(f"{path}:{err.lineno + head.count(chr(10)) + 3}: template syntax error: {err.message}") from err
    declared = frozenset(header["variables"] or [])
    used = jinja_meta.find_undeclared_variables(parsed)
    if used - declared:
        raise ConfigError(f"{path}: template uses undeclared variable(s): {', '.join(sorted(used - declared))}")
    first_line = head.count("\n") + 4  # the body's first line, 1-based
    for offset, line in enumerate(body.splitlines()):
        if _RAW_ATTRIBUTE.search(line):
            raise ConfigError(f"{path}:{first_line + offset}: a value inside a tag attribute must use the attr filter "
                              "({{ value | attr }})")
    return Template(
        name=name, version=str(header.get("version", "1")), schema=header.get("schema"), variables=declared,
        body=body, path=path, hash=hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16],
        sections=_sections(body, path, first_line),
    )


def _sections(body: str, path: Path, first_line: int) -> tuple[tuple[str, str], ...]:
    """Cut the template source (not rendered text) into (role, source) at its ``## role`` lines."""
    sections: list[tuple[str, list[str]]] = []
    for offset, line in enumerate(body.splitlines(keepends=True)):
        mark = line.strip()
        if mark.startswith(_ROLE_MARK) and mark[len(_ROLE_MARK):] in _ROLES:
            sections.append((mark[len(_ROLE_MARK):], []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            raise ConfigError(f"{path}:{first_line + offset}: text before the first '## system' or '## user' line")
    if not sections:
        raise ConfigError(f"{path}: no '## system' or '## user' section")
    return tuple((role, "".join(lines)) for role, lines in sections)


def render_prompt(name: str, /, **variables: Any) -> RenderedPrompt:
    """Render a template into chat messages; a missing or extra variable is a ConfigError."""
    template = load_template(name)
    missing = template.variables - variables.keys()
    extra = variables.keys() - template.variables
    if missing or extra:
        problems = [f"missing variable {v!r}" for v in sorted(missing)] + [f"unexpected variable {v!r}" for v in sorted(extra)]
        raise ConfigError(f"prompt {template.path.name}: {'; '.join(problems)}")
    try:
        messages = [{"role": role, "content": compiled.render(**variables).strip()}
                    for role, compiled in _compiled(template.path, template.hash)]
    except jinja2.UndefinedError as err:
        raise ConfigError(f"prompt {template.path.name}: {err.message}") from err
    return RenderedPrompt(ref=template.ref, schema=template.schema, messages=messages)


@lru_cache(maxsize=64)
def _compiled(path: Path, digest: str) -> list[tuple[str, jinja2.Template]]:
    """The compiled sections of a template (compiling costs far more than rendering)."""
    return [(role, _ENV.from_string(source)) for role, source in load_template(path.stem, path.parent).sections]
