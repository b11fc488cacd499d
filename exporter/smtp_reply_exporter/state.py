"""The state file: where each followed file was left, so a restart neither skips nor repeats a line.

Every field is checked on load: a bad entry is reported and dropped (that file starts at its end, as
on a first start), never an exception that stops the exporter from starting.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

from .sources.file import Position

log = logging.getLogger(__name__)
VERSION = 1
MAX_ID = 1 << 64  # device and inode numbers
MAX_OFFSET = 1 << 63  # off_t
_FINGERPRINT = re.compile(r"\d{1,5}:[0-9a-f]{32}")


@dataclass
class State:
    positions: dict[str, Position] = field(default_factory=dict)  # by absolute file path
    cursors: dict[str, str] = field(default_factory=dict)  # by source, for the journal


def load(path: str | None) -> State:
    """Saved positions; a missing file is a first start, a bad one is reported and ignored."""
    if not path:
        return State()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"unknown version {data.get('version') if isinstance(data, dict) else data!r}")
        files, cursors = data.get("files", {}), data.get("cursors", {})
        if not isinstance(files, dict) or not isinstance(cursors, dict):
            raise ValueError("files and cursors must be objects")
    except FileNotFoundError:
        return State()
    except (OSError, ValueError, RecursionError) as err:
        log.error("state file %s is unreadable (%s): starting at the end of the logs", path, err)
        return State()
    positions = {}
    for name, entry in files.items():
        try:
            positions[name] = _position(entry)
        except ValueError as err:
            log.error("state file %s: entry for %r ignored (%s): that file starts at its end", path, name, err)
    good = {k: v for k, v in cursors.items() if isinstance(v, str) and len(v) < 4096}
    if len(good) < len(cursors):
        log.error("state file %s: bad journal cursors ignored", path)
    return State(positions, good)


def _position(entry: Any) -> Position:
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    numbers = []
    for key, limit in (("dev", MAX_ID), ("ino", MAX_ID), ("offset", MAX_OFFSET)):
        value = entry.get(key)
        if type(value) is not int or not 0 <= value < limit:
            raise ValueError(f"{key} {value!r} is not an integer in [0, {limit})")
        numbers.append(value)
    prints = []
    for key in ("head", "tail"):
        value = entry.get(key, "")
        if not isinstance(value, str) or (value and not _FINGERPRINT.fullmatch(value)):
            raise ValueError(f"{key} {value!r} is not a fingerprint")
        prints.append(value)
    return Position(numbers[0], numbers[1], numbers[2], prints[0], prints[1])


def save(path: str | None, state: State) -> bool:
    """Write atomically (temp file + rename in the same directory); False when it could not."""
    if not path:
        return True
    data = {
        "version": VERSION,
        "files": {
            name: {"dev": p.dev, "ino": p.ino, "offset": p.offset, "head": p.head, "tail": p.tail}
            for name, p in sorted(state.positions.items())
        },
        "cursors": dict(sorted(state.cursors.items())),
    }
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as err:
        log.error("cannot write state file %s: %s", path, err)
        return False
    return True
