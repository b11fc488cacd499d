"""The compiled hot path counts exactly what its pure Python source counts (differential testing).

The same corpus goes through `parse` of the installed variant and of the source tree read as pure Python:
generated logs of every MTA, the real Postfix log of the end-to-end test, the real logs of tests/fixtures and
tests/samples, and seeded mutations of all their lines (cut, characters replaced, slices repeated, reply-shaped
tokens put in, invalid UTF-8 and NUL bytes). Every reply of every line and every count on /metrics must be
equal. tests/run.sh runs this against the compiled wheel; with the pure package installed both sides are the
same code and the test is skipped.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from smtp_reply_exporter import parse as installed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from generate import generate  # noqa: E402

REAL = [*sorted((ROOT / "tests" / "fixtures" / "corpus").glob("*.log")),
        *sorted((ROOT / "tests" / "samples").glob("*.log")), ROOT / "bench" / "corpus" / "postfix-e2e.log"]
ALPHABET = " :;,=[]()<>\"'/.-_#+0123456789aZ\t\u00e9\u0663"
TOKENS = ("550 5.7.1 ", "said: 451 4.3.0 Try", "status=sent (250 2.0.0 Ok)", 'result="421 4.3.0 x"', " C=\"250 OK\"",
          "reject: RCPT from a[1.2.3.4]: 554 ", "disconnect from a[1.2.3.4] ehlo=1 quit=1", "stat=Deferred: 451 ",
          " smtp disconnected reason=quit", " H=mx [192.0.2.1]: SMTP error from remote mail server after RCPT ",
          "delays=0.1/0/0/0, dsn=4.0.0, ", "== u@example.org R=dnslookup T=remote_smtp defer (-44): ")


def mutated(line: bytes, rng: random.Random) -> bytes:
    text = line.decode("utf-8", "replace")
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        kind = rng.randrange(5)
        if kind == 0:
            text = text[:at]
        elif kind == 1 and text:
            text = text[:at] + rng.choice(ALPHABET) + text[at + 1 :]
        elif kind == 2:
            end = min(len(text), at + rng.randint(1, 30))
            text = text[:end] + text[at:end] * rng.randint(1, 3) + text[end:]
        elif kind == 3:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        else:
            text = text[:at] + text[at + 1 :]
    data = text.encode()
    if rng.random() < 0.03:
        data += rng.choice((b"\xff\xfe", b"\x00", b"\xc3"))
    return data.replace(b"\n", b" ")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("variants")
    lines: list[bytes] = []
    for mta in ("postfix", "exim", "sendmail", "opensmtpd"):
        generate(str(work / f"{mta}.log"), 4000, mta=mta)
        lines += (work / f"{mta}.log").read_bytes().splitlines()
    for path in REAL:
        lines += path.read_bytes().splitlines()
    rng = random.Random(5321)
    out = work / "corpus.log"
    out.write_bytes(b"\n".join([*lines, *(mutated(rng.choice(lines), rng) for _ in range(30_000))]) + b"\n")
    return out


def run_parse(corpus: Path, fmt: str, pure: bool) -> list[str]:
    env = dict(os.environ)
    if pure:  # the source tree first on the path: the same modules, interpreted
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "exporter"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", fmt, str(corpus)],
                          capture_output=True, text=True, env=env, check=True, timeout=600)
    return proc.stdout.splitlines()


def variant_and_counts(output: list[str]) -> tuple[str, list[str]]:
    """The variant build_info names (jsonl says none) and the rest, but the last line's read time (the clock's)."""
    info = [line for line in output if line.startswith("smtp_exporter_build_info{")]
    variant = info[0].split('variant="')[1].split('"')[0] if info else ""
    rest = [line for line in output
            if not line.startswith(("smtp_exporter_build_info", "smtp_exporter_last_line_timestamp"))]
    return variant, rest


@pytest.mark.skipif(installed.__file__.endswith(".py"),
                    reason="the pure package is installed: both sides would be the same code")
@pytest.mark.parametrize("fmt", ["jsonl", "prometheus"])
def test_the_compiled_variant_counts_what_the_pure_source_counts(corpus: Path, fmt: str) -> None:
    (compiled_variant, compiled), (pure_variant, pure) = (
        variant_and_counts(run_parse(corpus, fmt, pure=False)), variant_and_counts(run_parse(corpus, fmt, pure=True)))
    if fmt == "prometheus":
        assert (compiled_variant, pure_variant) == ("compiled", "pure")
    assert len(compiled) > {"jsonl": 10_000, "prometheus": 500}[fmt]  # replies of lines; series
    assert compiled == pure
