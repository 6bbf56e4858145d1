"""Where the command line keeps what it derived once and can reuse (the checked catalogue, the compiled
Hyperscan database), and how it writes there."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

CACHE_DIR_VARIABLE = "EMR_TRIAGE_CACHE_DIR"


def default_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """``$EMR_TRIAGE_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/emr-triage``, else
    ``~/.cache/emr-triage``; None when there is no home to put it in."""
    if CACHE_DIR_VARIABLE in environ:
        chosen = environ[CACHE_DIR_VARIABLE].strip()
        return Path(chosen) if chosen else None
    base = environ.get("XDG_CACHE_HOME", "").strip()
    if base:
        return Path(base) / "emr-triage"
    home = environ.get("HOME", "").strip()
    return Path(home) / ".cache" / "emr-triage" if home else None


def write_atomically(path: Path, data: bytes) -> None:
    """Write a cache file so that a reader sees the old one or the new one, never half of one.

    Raises
    ------
    OSError
        When the folder cannot be made or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
