"""The tokenizer: the real cl100k_base, loaded from files on disk, never from the network."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT
from rag.errors import ConfigError
from rag.tokens import count_tokens, get_encoding


def test_cl100k_base_is_the_real_encoding():
    enc = get_encoding("cl100k_base")
    assert enc.encode_ordinary("hello world") == [15339, 1917]
    assert enc.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert enc.decode([83, 1609, 5963, 374, 2294, 0]) == "tiktoken is great!"
    assert enc.n_vocab == 100277
    assert count_tokens("hello world") == 2


def test_default_encoding_is_cl100k_base():
    assert get_encoding() is get_encoding("cl100k_base")


def test_encoding_loads_with_the_network_blocked(tmp_path: Path):
    """A fresh interpreter with every socket connect refused (and an empty tiktoken cache) still loads it."""
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network blocked by test")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from rag.tokens import get_encoding
        enc = get_encoding("cl100k_base")
        print(enc.encode_ordinary("hello world"))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache"), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[15339, 1917]"
    assert "network blocked" not in result.stderr


def test_unknown_encoding_is_a_config_error_naming_the_available_ones():
    with pytest.raises(ConfigError) as info:
        get_encoding("no_such_encoding")
    message = str(info.value)
    assert "no_such_encoding" in message
    assert "cl100k_base" in message
    assert info.value.exit_code == 2


def test_online_only_encoding_is_refused_rather_than_downloaded():
    # o200k_base exists in tiktoken but only as a download; we must not fetch it.
    with pytest.raises(ConfigError, match="cl100k_base"):
        get_encoding("o200k_base")
