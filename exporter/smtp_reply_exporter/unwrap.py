"""Container runtime log formats, unwrapped back into the MTA's own lines.

Kubernetes CRI files (/var/log/pods/...): "2026-11-28T12:00:00.123456789Z stdout F <line>", where
"P" marks a partial line continued by the next record. Docker's json-file driver:
{"log":"<line>\\n","stream":"stdout","time":"..."}, where a record without the trailing newline is
partial. The format is sniffed once per file from its first line; plain logs pass untouched.
"""

from __future__ import annotations

import json
import re

_CRI = re.compile(r"\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) ([PF])(?: |$)")
MAX_PARTIAL = 1 << 16  # same bound as a line in the tailer


class Unwrapper:
    def __init__(self) -> None:
        self.mode: str | None = None  # "cri", "docker" or "plain", decided by the first line
        self._partial: list[str] = []
        self._partial_len = 0
        self.malformed = 0  # records of a container format that could not be read

    def lines(self, lines: list[str]) -> list[str]:
        if self.mode is None:
            first = next((line for line in lines if line), None)
            if first is None:
                return lines
            self.mode = "cri" if _CRI.match(first) else "docker" if first.startswith('{"log":') else "plain"
        if self.mode == "plain":
            return lines
        return self._cri(lines) if self.mode == "cri" else self._docker(lines)

    def _cri(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            m = _CRI.match(line)
            if m is None:
                self.malformed += 1
                continue
            self._join(line[m.end():], m.group(1) == "F", out)
        return out

    def _docker(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            try:
                text = json.loads(line)["log"]
                if not isinstance(text, str):
                    raise TypeError("log is not a string")
            except (ValueError, KeyError, TypeError):
                self.malformed += 1
                continue
            complete = text.endswith("\n")
            self._join(text.rstrip("\n") if complete else text, complete, out)
        return out

    def _join(self, text: str, complete: bool, out: list[str]) -> None:
        if not complete:
            if self._partial_len < MAX_PARTIAL:
                self._partial.append(text)
                self._partial_len += len(text)
            return
        if self._partial:
            text = "".join(self._partial) + text
            self._partial, self._partial_len = [], 0
        out.append(text)
