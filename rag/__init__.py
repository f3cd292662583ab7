"""Grounded summarization and Q&A over a corpus of documents.

The public API, imported lazily so the CLI starts fast::

    from rag import Settings, load_settings, SQLiteIndex, index_paths, retrieve, ask, summarize_document, run_batch
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "rag.config", "load_settings": "rag.config", "SQLiteIndex": "rag.index", "index_paths": "rag.index",
    "retrieve": "rag.retrieve", "ask": "rag.answer", "ask_stream": "rag.answer", "Conversation": "rag.answer",
    "chat_turn": "rag.answer", "summarize_document": "rag.briefing", "run_batch": "rag.briefing", "Runner": "rag.briefing",
    "get_backend": "rag.backends.base", "RagError": "rag.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
