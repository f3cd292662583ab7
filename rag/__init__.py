"""Grounded summarization and Q&A over a corpus of documents."""

__version__ = "0.1.0"
