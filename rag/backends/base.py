"""The backend interface: one ``generate`` call (and an optional ``stream``) for every task.

A request carries both the rendered prompt (for models) and the structured inputs it was rendered
from (for the offline engine), so both modes run the same pipeline and fill the same schemas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ..errors import ConfigError
from ..prompts import RenderedPrompt
from ..render import clean_text
from ..types import Usage

if TYPE_CHECKING:
    from ..config import Settings

Task = Literal["answer", "condense", "summary", "briefing", "rubric"]


@dataclass
class GenerationRequest:
    task: Task
    prompt: RenderedPrompt
    schema: type[BaseModel] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    temperature: float | None = None  # None: the configured RAG_LLM__TEMPERATURE


@dataclass
class Generation:
    """A backend's output: a validated model instance (when a schema was asked for) or text."""

    output: BaseModel | str
    usage: Usage
    raw: str = ""


class Backend:
    """Implement ``generate``; ``stream`` yields text deltas then the final Generation."""

    name: str = "base"
    # True only for engines whose text is assembled from the sources by our own code (offline): a model's
    # text is checked sentence by sentence against its quotes, and its refusal text is replaced by ours.
    trusted_text: bool = False

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.model = settings.model

    def generate(self, request: GenerationRequest) -> Generation:  # pragma: no cover - interface
        raise NotImplementedError

    def stream(self, request: GenerationRequest) -> Iterator[str | Generation]:
        """An engine that does not stream still sends its answer in pieces (a word each), as a model would."""
        result = self.generate(request)
        if isinstance(result.output, BaseModel) and hasattr(result.output, "answer"):
            yield from text_pieces(clean_text(str(result.output.answer)))
        yield result

    def close(self) -> None:
        return None


def text_pieces(text: str) -> list[str]:
    """``text`` cut after each run of whitespace: ``"".join(text_pieces(t)) == t``."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


# Name -> "module:class", imported only when chosen (the offline path never imports the openai SDK).
REGISTRY: dict[str, str] = {"offline": "rag.backends.offline:OfflineBackend", "openai": "rag.backends.openai:OpenAIBackend"}


def get_backend(settings: "Settings", *, use_cache: bool = True) -> Backend:
    """The configured backend, wrapped in the response cache unless caching is off or pointless."""
    import importlib

    name = settings.backend or "offline"
    if name not in REGISTRY:
        raise ConfigError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    backend: Backend = getattr(importlib.import_module(module), cls)(settings)
    if use_cache and settings.cache != "off" and name != "offline":
        from ..cache import CachedBackend
        from ..stores import open_cache

        backend = CachedBackend(backend, open_cache(settings), mode=settings.cache)
    return backend
