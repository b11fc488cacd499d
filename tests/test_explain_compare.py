"""`explain` and `compare` as a person and a script meet them: through the real command."""

import json
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smtp_reply_exporter", *args],
                          capture_output=True, text=True, timeout=60)


def test_explain_json_prints_one_object_per_code_with_class_and_weight():
    out = run("explain", "--format", "json", "221", "455", "4.5.3", "5.7.26")
    assert out.returncode == 0, out.stderr
    objs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [o["code"] for o in objs] == ["221", "455", "4.5.3", "5.7.26"]
    for o in objs:
        assert {"code", "class", "class_name", "category", "weight", "meaning", "when", "fix", "rfc"} <= set(o)
    assert (objs[0]["class"], objs[0]["weight"]) == ("2xx", "normal")
    assert (objs[1]["class"], objs[1]["weight"]) == ("4xx", "transient_pressure")
    assert objs[3]["meaning"].startswith("Multiple authentication checks failed")


@pytest.mark.parametrize(("code", "klass", "weight", "words"), [
    ("221", "2xx", "normal", "closing the connection in good order"),
    ("455", "4xx", "transient_pressure", "cannot accommodate the parameters"),
    ("421", "4xx", "transient_pressure", "not available and closes the connection"),
    ("550", "5xx", "permanent", "mailbox is unavailable"),
    ("4.5.3", "4", "transient_pressure", "Too many recipients"),
    ("5.7.1", "5", "permanent", "Delivery not authorized"),
    ("299", "2xx", "normal", "Unregistered code"),
    ("4.9.99", "4", "transient", "Unregistered code"),
])
def test_explain_names_class_weight_and_meaning(code, klass, weight, words):
    text = run("explain", code)
    assert text.returncode == 0
    assert words in " ".join(text.stdout.split())
    obj = json.loads(run("explain", "--format", "json", code).stdout)
    assert (obj["class"], obj["weight"]) == (klass, weight)


def test_explain_pair_shows_both_parts():
    obj = json.loads(run("explain", "--format", "json", "455 4.5.3").stdout)
    assert obj["code"] == "455 4.5.3" and obj["enhanced"]["code"] == "4.5.3"
    text = run("explain", "455 4.5.3").stdout
    assert "455  4xx" in text and "4.5.3  4 Persistent Transient Failure" in text


def test_explain_classless_registry_form():
    obj = json.loads(run("explain", "--format", "json", "X.5.3").stdout)
    assert obj["class"] == "X" and obj["weight"] is None and obj["title"] == "Too many recipients"


def test_compare_221_455_reads_as_normal_end_versus_retry_later():
    out = run("compare", "221", "455")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "Positive Completion" in text and "Transient Negative Completion" in text
    assert "Key differences" in text
    assert "Class: 221 is Positive Completion, 455 is Transient Negative Completion." in text
    assert "No retry: nothing failed." in text and "Retry later, with less load" in text
    assert "When 221 is expected: At the end of every session" in text


def test_compare_json_works_for_enhanced_codes_too():
    obj = json.loads(run("compare", "--format", "json", "4.7.1", "550").stdout)
    assert [c["code"] for c in obj["codes"]] == ["4.7.1", "550"]
    assert any(d.startswith("Class:") for d in obj["differences"])


@pytest.mark.parametrize("bad", ["45", "655", "abc", "4.5", "", "455 5.5.3"])
def test_bad_codes_exit_nonzero_with_one_line_and_no_traceback(bad):
    out = run("explain", bad)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("smtp-reply-exporter: error:")
