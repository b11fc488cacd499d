"""Which mailbox provider a remote server belongs to, from its host name: a bounded `provider` label.

The mapping is data (`providers.json` in the package, or `--remote.providers FILE`): provider names and
the host-name suffixes of their mail servers. A host matches a suffix when it is the suffix or ends in
"." + suffix; the longest suffix wins; anything else, and a host given only as an address, is `other`.
A host name never becomes a label value: only the names the mapping lists do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Final

from .parse import exim, opensmtpd, postfix, sendmail
from .parse.limits import remember
from .parse.pattern import word

OTHER: Final = "other"
MAX_PROVIDERS: Final = 64  # label values: a mapping file cannot make the label unbounded
MAX_HOST: Final = 253  # the longest DNS name
_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"  # one DNS label
_SUFFIX: Final = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL}\.)*{_LABEL}")
_ADDRESS: Final = re.compile(r"[0-9.]+|.*:.*")  # an IPv4 or IPv6 address where a name would be


class ProvidersError(ValueError):
    """The mapping file cannot be read or contradicts itself."""


@dataclass(frozen=True, eq=False)  # hashed by identity: the lookup cache keys on it
class ProviderMap:
    """Host-name suffix -> provider name; `of_host` is cached (a few hundred relays in practice)."""

    suffixes: dict[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({*self.suffixes.values(), OTHER}))

    def of_host(self, host: str | None) -> str:
        if not host or len(host) > MAX_HOST:
            return OTHER
        return _lookup(self, host.lower().rstrip("."))


@lru_cache(maxsize=4096)
def _lookup(providers: ProviderMap, host: str) -> str:
    if _ADDRESS.fullmatch(host):
        return OTHER
    labels = host.split(".")
    for i in range(len(labels)):  # the longest suffix first
        found = providers.suffixes.get(".".join(labels[i:]))
        if found is not None:
            return found
    return OTHER


def load(path: str | None = None) -> ProviderMap:
    """The mapping in `path` (JSON; YAML when PyYAML is installed), or the packaged default."""
    if path is None:
        return parse(json.loads(resources.files(__package__).joinpath("providers.json").read_text("utf-8")))
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ProvidersError(f"cannot read {path}: {err}") from err
    try:
        data = json.loads(text)
    except ValueError:
        data = _yaml(path, text)
    return parse(data, path)


def _yaml(path: str, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ProvidersError(f"{path} is not JSON; for YAML install PyYAML (pip install 'smtp-reply-exporter[web]')"
                             ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProvidersError(f"{path}: {err}") from err


def parse(data: Any, where: str = "providers.json") -> ProviderMap:
    """Validate a mapping: {"providers": [{"name": "google", "suffixes": ["google.com"], "examples": [...]}]}.
    Examples, when given, must map to their provider: the data checks itself."""
    entries = data.get("providers") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ProvidersError(f"{where}: expected a non-empty list under 'providers'")
    if len(entries) > MAX_PROVIDERS:
        raise ProvidersError(f"{where}: at most {MAX_PROVIDERS} providers (each is a label value)")
    suffixes: dict[str, str] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name == OTHER:
            raise ProvidersError(f"{where}: provider name {name!r} must match [a-z][a-z0-9_]{{0,31}} and not be "
                                 f"{OTHER!r}")
        listed = entry.get("suffixes")
        if not isinstance(listed, list) or not listed:
            raise ProvidersError(f"{where}: {name}: expected a non-empty list of host-name suffixes")
        for suffix in listed:
            if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix.lower()) or _ADDRESS.fullmatch(suffix):
                raise ProvidersError(f"{where}: {name}: {suffix!r} is not a host-name suffix")
            if suffixes.setdefault(suffix.lower(), name) != name:
                raise ProvidersError(f"{where}: {suffix} belongs to {suffixes[suffix.lower()]} and {name}")
    providers = ProviderMap(suffixes)
    for entry in entries:
        for example in entry.get("examples", []):
            if providers.of_host(example) != entry["name"]:
                raise ProvidersError(f"{where}: example {example!r} does not map to {entry['name']}")
    return providers


# Where each MTA names the remote server that replied, in a line with client-role replies. Bounded names
# that stop at "=": a line of "relay=relay=..." cannot make each start scan the rest of the line.
_POSTFIX_RELAY: Final = re.compile(r"relay=([^\s\[\],=]{1,253}+)\[")  # "relay=mx.example.org[192.0.2.7]:25"
# "host mx[ip] said:", "refused to talk to me"
_POSTFIX_HOST: Final = re.compile(r"(?:host|server) ([^\s\[\]]{1,253}+)\[")
# callouts name the callout target
_EXIM_CALLOUT: Final = re.compile(r" from ([^\s\[\]]{1,253}+) \[[^\[\]\s]{1,64}+\] was: ")
_EXIM_HOST: Final = re.compile(word("H=") + r"([^\s\[\]()=]{1,253}+) \[")  # "H=mx.example.org [192.0.2.7]"
_SENDMAIL_RELAY: Final = re.compile(r"relay=([^\s,\[\]]++)")  # "relay=mx.example.org. [192.0.2.7]"
_OPENSMTPD_RELAY: Final = re.compile(r'relay="[^"(]*+\(([^\s()"]++)\)"|relay="([^\s"\[]++)')  # 'relay="ip (name)"'


_HOST: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")  # what the fast cut of a relay= field must be


# The relay names seen, and whether each is a clean host name: relays repeat line after line (bounded)
_clean_hosts: Final[dict[str, bool]] = {}
MAX_CLEAN_HOSTS: Final = 4096


def host_of(mta: str, line: str) -> str | None:
    """remote_host of a line. Postfix's delivery lines name the server first in relay=NAME[: cut out by two
    finds; only a line where that gives no clean name (relay=none, a line without relay=) is read again by
    remote_host."""
    if mta == postfix.MTA:
        start = line.find(" relay=")
        if start >= 0:
            start += 7
            cut = line[start : line.find("[", start)]
            clean = _clean_hosts.get(cut)
            if clean is None:
                clean = _HOST.fullmatch(cut) is not None
                if len(cut) <= MAX_HOST:
                    remember(_clean_hosts, cut, clean, MAX_CLEAN_HOSTS)
            if clean:
                return cut
    return remote_host(mta, line)


def remote_host(mta: str, line: str) -> str | None:
    """The remote server's host name in a line of `mta` with client-role replies, or None."""
    if mta == postfix.MTA:
        m = _POSTFIX_RELAY.search(line)
        if m is not None and m.group(1) != "none":
            return m.group(1)
        m = _POSTFIX_HOST.search(line)
    elif mta == exim.MTA:
        m = _EXIM_CALLOUT.search(line) if " was: " in line else None
        m = m or _EXIM_HOST.search(line)
    elif mta == sendmail.MTA:
        m = _SENDMAIL_RELAY.search(line)
    elif mta == opensmtpd.MTA:
        m = _OPENSMTPD_RELAY.search(line)
    else:
        return None
    return None if m is None else m.group(m.lastindex or 1)
