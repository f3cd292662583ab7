"""Prompt templates in ``prompts/``: loaded by name, rendered strictly, identified by a hash.

Each file is ``prompts/<name>.j2``: a YAML front-matter header (name, version, schema, variables)
between ``---`` lines, then a Jinja2 body with ``{% role system %}`` / ``{% role user %}`` blocks
marked by lines ``## system`` and ``## user``. Missing and extra variables are errors naming the
template; every rendered prompt carries ``name`` and the sha256 of the template file.
"""

from __future__ import annotations

import hashlib
import os
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

    @property
    def ref(self) -> PromptRef:
        return PromptRef(name=self.name, hash=self.hash)


@dataclass(frozen=True)
class RenderedPrompt:
    ref: PromptRef
    schema: str | None
    messages: list[dict[str, str]]


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                          trim_blocks=True, lstrip_blocks=True)


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
    return Template(
        name=name, version=str(header.get("version", "1")), schema=header.get("schema"), variables=declared,
        body=body, path=path, hash=hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16],
    )


def render_prompt(name: str, /, **variables: Any) -> RenderedPrompt:
    """Render a template into chat messages; a missing or extra variable is a ConfigError."""
    template = load_template(name)
    missing = template.variables - variables.keys()
    extra = variables.keys() - template.variables
    if missing or extra:
        problems = [f"missing variable {v!r}" for v in sorted(missing)] + [f"unexpected variable {v!r}" for v in sorted(extra)]
        raise ConfigError(f"prompt {template.path.name}: {'; '.join(problems)}")
    try:
        text = _compiled(template.path, template.hash).render(**variables)
    except jinja2.UndefinedError as err:
        raise ConfigError(f"prompt {template.path.name}: {err.message}") from err
    return RenderedPrompt(ref=template.ref, schema=template.schema, messages=_split_roles(text, template.path))


@lru_cache(maxsize=64)
def _compiled(path: Path, digest: str) -> jinja2.Template:
    """The compiled body of a template (compiling costs far more than rendering)."""
    return _ENV.from_string(load_template(path.stem, path.parent).body)


def _split_roles(text: str, path: Path) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for line in text.splitlines(keepends=True):
        mark = line.strip()
        if mark.startswith(_ROLE_MARK) and mark[len(_ROLE_MARK):] in _ROLES:
            messages.append({"role": mark[len(_ROLE_MARK):], "content": ""})
        elif messages:
            messages[-1]["content"] += line
        elif line.strip():
            raise ConfigError(f"{path}: text before the first '## system' or '## user' line")
    for m in messages:
        m["content"] = m["content"].strip()
    return messages
