"""The hot path (line splitting, the parsers, counting) compiled with mypyc from the same typed source.

Metadata lives in pyproject.toml; this file only decides what is compiled. mypyc turns the modules
below, already checked by `mypy --strict`, into C extensions; everything else stays interpreted.
Without a C compiler, with SMTP_REPLY_EXPORTER_PURE=1, or installed editable, the package installs as pure Python and
behaves the same (the tests run against both); `smtp_exporter_build_info{variant}` says which runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from setuptools import setup

HOT_PATH = [
    "exporter/smtp_reply_exporter/reply.py",
    "exporter/smtp_reply_exporter/parse/__init__.py",
    "exporter/smtp_reply_exporter/parse/message.py",
    "exporter/smtp_reply_exporter/parse/pattern.py",
    "exporter/smtp_reply_exporter/parse/syslog.py",
    "exporter/smtp_reply_exporter/parse/replytext.py",
    "exporter/smtp_reply_exporter/parse/limits.py",
    "exporter/smtp_reply_exporter/parse/postfix.py",
    "exporter/smtp_reply_exporter/parse/exim.py",
    "exporter/smtp_reply_exporter/parse/sendmail.py",
    "exporter/smtp_reply_exporter/parse/opensmtpd.py",
    "exporter/smtp_reply_exporter/ingest.py",
    "exporter/smtp_reply_exporter/batch.py",
    "exporter/smtp_reply_exporter/details.py",
    "exporter/smtp_reply_exporter/delays.py",
    "exporter/smtp_reply_exporter/providers.py",
    "exporter/smtp_reply_exporter/sessions.py",
    "exporter/smtp_reply_exporter/unparsed.py",
]


def compiler_available() -> bool:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def ext_modules() -> list:  # type: ignore[type-arg]
    # An editable install would put the compiled modules beside the sources, where they would shadow
    # every later edit of them: editable installs stay pure.
    editable = any(command in sys.argv for command in ("editable_wheel", "develop"))
    if editable or os.environ.get("SMTP_REPLY_EXPORTER_PURE") == "1" or not compiler_available():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # mypy is a build requirement; a build without isolation may lack it
        return []
    return mypycify([p for p in HOT_PATH if os.path.exists(p)], opt_level="3", debug_level="0")


setup(ext_modules=ext_modules())
