"""Saved chat conversations, behind a small interface so a shared database can hold them later."""

from __future__ import annotations

import json
import time
from typing import Protocol

from .index import SQLiteIndex


class SessionStore(Protocol):
    def load(self, name: str) -> list[dict[str, str]]: ...
    def save(self, name: str, turns: list[dict[str, str]]) -> None: ...


class SQLiteSessions:
    """Conversations in the index file's ``sessions`` table."""

    def __init__(self, index: SQLiteIndex) -> None:
        self.index = index

    def load(self, name: str) -> list[dict[str, str]]:
        row = self.index.db.execute("SELECT turns FROM sessions WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else []

    def save(self, name: str, turns: list[dict[str, str]]) -> None:
        with self.index.transaction():
            self.index.db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (name, json.dumps(turns), time.time()))
