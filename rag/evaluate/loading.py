"""Load suites from YAML: every problem becomes a one-line ConfigError ``file:line: field: what``.

YAML is parsed twice, as data for pydantic and as a node tree, so that an error's location
(``cases[3].assert[0].contains``) maps back to the line it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from .suite import ASSERTION_TYPES, KINDS, Suite


@dataclass
class LoadedSuite:
    """A validated suite with where it came from: reports point at ``path:line`` of each case."""

    suite: Suite
    path: Path
    case_lines: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.suite.name


# ------------------------------------------------------------------ loading
def suite_files(paths: list[Path]) -> list[Path]:
    """Suite files named on the command line; a directory means its ``*.yaml``/``*.yml`` files (not recursive)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in {".yaml", ".yml"} and q.is_file())
            if not found:
                raise ConfigError(f"no suite files (*.yaml) in {p}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"no such suite file or directory: {p}")
    return list(dict.fromkeys(files))


def load_suite(path: Path) -> LoadedSuite:
    """Parse and validate one suite file; any problem is a one-line ConfigError ``file:line: field: what``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read suite: {err}") from err
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        line = (err.problem_mark or err.context_mark).line + 1 if (err.problem_mark or err.context_mark) else 1
        raise ConfigError(f"{path}:{line}: invalid YAML: {err.problem or err.context}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(data, dict) or root is None:
        raise ConfigError(f"{path}:1: a suite is a mapping with name, corpora and cases")
    data.setdefault("name", path.stem)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe_error(path, root, data, err)) from err
    lines: dict[str, int] = {}
    cases_node = _child(root, "cases")
    for i, case in enumerate(suite.cases):
        node = cases_node.value[i] if isinstance(cases_node, yaml.SequenceNode) else root
        lines[case.id] = node.start_mark.line + 1
    return LoadedSuite(suite=suite, path=path, case_lines=lines)


def load_suites(paths: list[Path]) -> list[LoadedSuite]:
    """Load every suite; suite names must be unique and a corpus name must mean the same paths everywhere."""
    loaded = [load_suite(p) for p in suite_files(paths)]
    names: dict[str, Path] = {}
    corpora: dict[str, tuple[list[str], Path]] = {}
    for s in loaded:
        if s.name in names:
            raise ConfigError(f"{s.path}:1: suite name {s.name!r} is also used by {names[s.name]}")
        names[s.name] = s.path
        for name, paths in s.suite.corpora.items():
            if name in corpora and corpora[name][0] != paths:
                raise ConfigError(f"{s.path}: corpus '{name}' is {paths} here but {corpora[name][0]} in {corpora[name][1]}",
                                  hint="one index is built per corpus name")
            corpora.setdefault(name, (paths, s.path))
    return loaded


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _key_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((k for k, _ in node.value if getattr(k, "value", None) == key), None)
    return None


_TAGS = set(KINDS) | set(ASSERTION_TYPES)


def locate(root: yaml.Node, loc: list[str | int]) -> tuple[int, str]:
    """(line, dotted field path) of a pydantic error location in the YAML node tree.

    Union tags in the location (a case's kind, an assertion's type) are not keys of the YAML and are
    skipped; a key that is not there (a missing field) is named but the line is its parent's.
    """
    node, parts, line_node = root, [], root
    for i, element in enumerate(loc):
        if element == "[key]":  # pydantic's marker for an invalid mapping key: the key itself is the field
            continue
        child = _child(node, element)
        if child is not None:
            node, line_node = child, child
            parts.append(element)
            continue
        last = i == len(loc) - 1
        key = _key_node(node, element) if isinstance(element, str) else None
        if key is not None:  # a key whose value is null
            line_node = key
            parts.append(element)
        elif isinstance(element, str) and last and element not in _TAGS:
            parts.append(element)
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return line_node.start_mark.line + 1, path


def _describe_error(path: Path, root: yaml.Node, data: dict[str, Any], err: ValidationError) -> str:
    def where(e: dict[str, Any]) -> tuple[int, str]:
        # A union member's tag follows the list index it was chosen for (cases[1].qa, assert[0].contains).
        raw = list(e["loc"])
        loc = [x for i, x in enumerate(raw) if not (x in _TAGS and i > 0 and isinstance(raw[i - 1], int))]
        loc += list((e.get("ctx") or {}).get("at", []))
        if e["type"] in {"union_tag_not_found", "union_tag_invalid"}:
            loc.append(str((e.get("ctx") or {}).get("discriminator", "kind")).strip("'"))
        return locate(root, loc)

    errors = sorted(err.errors(include_url=False), key=lambda e: where(e)[0])
    first = errors[0]
    line, field_path = where(first)
    msg = first["msg"]
    if first["type"] == "union_tag_not_found":
        msg = f"field required (one of: {', '.join(KINDS)})"
    elif first["type"] == "union_tag_invalid":
        msg = f"unknown kind {(first.get('ctx') or {}).get('tag')!r} (one of: {', '.join(KINDS)})"
    elif first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] == "missing":
        msg = "field required"
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    case_id = _case_id(data, list(first["loc"]))
    extra = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{path}:{line}: {field_path or 'suite'}: {msg}{case_id}{extra}"


def _case_id(data: dict[str, Any], loc: list[Any]) -> str:
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        cases = data.get("cases")
        if isinstance(cases, list) and loc[1] < len(cases) and isinstance(cases[loc[1]], dict) and cases[loc[1]].get("id"):
            return f" [case {cases[loc[1]]['id']}]"
    return ""
