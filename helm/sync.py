"""Copies rules/ and dashboards/ into the chart (Helm reads only files inside a chart).

Run `python3 helm/sync.py` after changing either; tests/test_helm.py fails when the copies differ.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART_FILES = ROOT / "helm" / "smtp-reply-exporter" / "files"
COPIES = {
    ROOT / "rules" / "smtp-reply-exporter.rules.yml": CHART_FILES / "smtp-reply-exporter.rules.yml",
    **{p: CHART_FILES / "dashboards" / p.name for p in sorted((ROOT / "dashboards").glob("*.json"))},
}

if __name__ == "__main__":
    for source, target in COPIES.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        print(f"{source.relative_to(ROOT)} -> {target.relative_to(ROOT)}")
