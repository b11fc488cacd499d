"""The state file: where each followed file was left, so a restart neither skips nor repeats a line."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field

from .tail import Position

log = logging.getLogger(__name__)
VERSION = 1


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
        if data.get("version") != VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        positions = {
            name: Position(int(p["dev"]), int(p["ino"]), int(p["offset"])) for name, p in data["files"].items()
        }
        cursors = {str(k): str(v) for k, v in data.get("cursors", {}).items()}
        return State(positions, cursors)
    except FileNotFoundError:
        return State()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.error("state file %s is unreadable (%s): starting at the end of the logs", path, err)
        return State()


def save(path: str | None, state: State) -> bool:
    """Write atomically (temp file + rename in the same directory); False when it could not."""
    if not path:
        return True
    data = {
        "version": VERSION,
        "files": {
            name: {"dev": p.dev, "ino": p.ino, "offset": p.offset} for name, p in sorted(state.positions.items())
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
