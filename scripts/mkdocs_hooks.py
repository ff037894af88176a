"""MkDocs hook: serve the published report figures that the docs pages show, without copying them.

A page refers to a figure as ``figures/<suite>/<file>.png``; this hook adds
``comparisons/results/<suite>/report/figures/<file>.png`` to the build under that
path, so the figures are never duplicated in ``docs/`` and a page that names a
figure the reports do not have fails the strict build (a broken image link).
Only the figures some page names are added, not the whole 20 MB of them.
"""
from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"\]\(figures/(?P<suite>[\w.-]+)/(?P<name>[\w.-]+\.(?:png|svg))\)")


def on_files(files, config):
    docs = Path(config["docs_dir"])
    wanted = {(m["suite"], m["name"]) for page in docs.glob("*.md")
              for m in FIGURE.finditer(page.read_text(encoding="utf-8"))}
    for suite, name in sorted(wanted):
        source = ROOT / "comparisons" / "results" / suite / "report" / "figures" / name
        if source.is_file():
            files.append(File.generated(config, f"figures/{suite}/{name}", abs_src_path=str(source)))
    return files
