"""Generation backends behind one small interface; pick one by name."""

from .base import Backend, Generation, GenerationRequest, get_backend

__all__ = ["Backend", "Generation", "GenerationRequest", "get_backend"]
