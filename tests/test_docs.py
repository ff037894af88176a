"""The README and the docs site against what they describe.

The result tables must equal the published reports (`scripts/docs_tables.py`), the site must build
strictly (a broken link or anchor fails), the README stays short, and every "spec §N", "row N" and
"anchors §N" the code cites, every flag a parser defines and every renamed log key must have its
place in the docs. All of it reads files only: no TensorFlow, no training.
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCS_TABLES = ROOT / "scripts" / "docs_tables.py"
# The code whose citations and flags the docs must cover (the package layout may change; scan it all).
CODE = [*sorted((ROOT / "tfppo").rglob("*.py")), *sorted((ROOT / "comparisons").rglob("*.py")),
        *sorted((ROOT / "comparisons" / "suites").glob("*.yaml")), *sorted((ROOT / "scripts").glob("*.py"))]


def run_tables(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DOCS_TABLES), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60)


def copy_for_tables(tmp_path: Path) -> Path:
    """The pages and the report tables, which is all docs_tables.py reads."""
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for page in DOCS.glob("*.md"):
        shutil.copy(page, tmp_path / "docs" / page.name)
    for table in ROOT.glob("comparisons/results/*/report/tables/*.md"):
        dest = tmp_path / table.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(table, dest)
    return tmp_path


# -- generated result tables --------------------------------------------------------------------

def test_result_tables_equal_the_published_reports():
    result = run_tables("--check")
    assert result.returncode == 0, result.stderr + "\nrun `python scripts/docs_tables.py` after a publish"


def test_an_edited_table_block_is_detected_and_rewritten(tmp_path):
    root = copy_for_tables(tmp_path)
    readme = root / "README.md"
    original = readme.read_text(encoding="utf-8")
    assert "<!-- table: classic/pairwise -->" in original
    assert run_tables("--check", root=root).returncode == 0

    block = original.index("<!-- table: classic/pairwise -->")
    row = original.index("| Pendulum-v1", block)
    edited = original[:row] + original[row:].replace("| Pendulum-v1", "| Pendulum-v0", 1)  # one cell edited by hand
    readme.write_text(edited, encoding="utf-8")
    result = run_tables("--check", root=root)
    assert result.returncode == 1
    assert "README.md" in result.stderr and "classic/pairwise" in result.stderr
    assert readme.read_text(encoding="utf-8") == edited  # --check changes nothing

    assert run_tables(root=root).returncode == 0
    assert readme.read_text(encoding="utf-8") == original
    assert run_tables("--check", root=root).returncode == 0


def test_a_changed_report_reaches_every_block_that_copies_it(tmp_path):
    """A new column in a report table (as a suite-wide correction would add) is copied, not parsed."""
    root = copy_for_tables(tmp_path)
    report = root / "comparisons/results/classic/report/tables/pairwise.md"
    lines = report.read_text(encoding="utf-8").split("\n")
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    lines[table[0]] += " new column |"
    lines[table[1]] += ":---|"
    for i in table[2:]:
        lines[i] += " x |"
    report.write_text("\n".join(lines), encoding="utf-8")

    result = run_tables("--check", root=root)
    assert result.returncode == 1
    assert "README.md" in result.stderr and "docs/results.md" in result.stderr
    assert run_tables(root=root).returncode == 0
    assert "| new column |" in (root / "README.md").read_text(encoding="utf-8")
    assert "| new column |" in (root / "docs/results.md").read_text(encoding="utf-8")


def test_a_broken_block_is_a_one_line_error(tmp_path):
    root = copy_for_tables(tmp_path)
    page = root / "docs" / "results.md"
    page.write_text(page.read_text(encoding="utf-8").replace("<!-- /table -->", "", 1), encoding="utf-8")
    result = run_tables("--check", root=root)
    assert result.returncode == 2
    assert result.stderr.startswith("docs_tables.py: error: docs/results.md:")


def test_every_result_table_in_the_docs_is_generated():
    """No hand-copied result table: every table row of the results page lies inside a block."""
    inside = False
    for number, line in enumerate((DOCS / "results.md").read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("<!-- table: "):
            inside = True
        elif line == "<!-- /table -->":
            inside = False
        elif line.startswith("|"):
            assert inside, f"docs/results.md:{number}: a table outside a <!-- table: suite/name --> block"


# -- the site ------------------------------------------------------------------------------------

def build_site(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=300, cwd=config.parent)


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")  # the `docs` extra, part of `test`: installed wherever make test runs
    result = build_site(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "spec" / "index.html").is_file()
    figures = list((tmp_path / "site" / "figures").rglob("*.png"))
    assert figures, "the results page's figures were not added to the site (scripts/mkdocs_hooks.py)"


def test_a_broken_link_fails_the_build(tmp_path):
    """The strictness is the point: a copy of the site with one dead anchor must not build."""
    pytest.importorskip("mkdocs")
    for name in ("mkdocs.yml", "scripts/mkdocs_hooks.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(DOCS, tmp_path / "docs")
    for figure in ROOT.glob("comparisons/results/*/report/figures/*.png"):
        dest = tmp_path / figure.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(figure, dest)
    assert build_site(tmp_path / "mkdocs.yml", tmp_path / "site").returncode == 0
    api = tmp_path / "docs" / "api.md"
    api.write_text(api.read_text(encoding="utf-8") + "\nSee [§99](spec.md#s99).\n", encoding="utf-8")
    result = build_site(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0 and "#s99" in result.stdout + result.stderr


# -- the README ----------------------------------------------------------------------------------

def test_readme_is_short_and_starts_from_the_two_make_targets():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move the detail to a docs page"
    text = "\n".join(lines)
    assert "make demo" in text and "make test" in text
    assert "<!-- table: classic/" in text  # the headline table is generated


# -- what the code cites ---------------------------------------------------------------------------

def code_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in CODE)


def spec_citations(text: str) -> set[str]:
    """'spec §7.1', 'spec §1.1-1.2', 'spec §2.3-2.4, row 18', '(spec §2.1, §5.1, §8)' -> sections."""
    found: set[str] = set()
    for match in re.finditer(r"spec §(\d+(?:\.\d+)?(?:[-–]\d+(?:\.\d+)?)?(?:, §\d+(?:\.\d+)?)*)", text):
        found.update(re.findall(r"\d+(?:\.\d+)?", match.group(1)))
    return found


def test_every_cited_spec_section_has_a_heading_in_docs_spec():
    sections = set(re.findall(r"(?m)^#{2,3} (\d+(?:\.\d+)?)[. ]", (DOCS / "spec.md").read_text(encoding="utf-8")))
    cited = spec_citations(code_text())
    assert len(cited) >= 20, f"found only {sorted(cited)}: did the code move out of tfppo/, comparisons/, scripts/?"
    missing = sorted(cited - sections, key=lambda s: [int(p) for p in s.split(".")])
    assert not missing, f"the code cites spec §{', §'.join(missing)}, which docs/spec.md has no heading for"


def test_every_cited_row_is_a_row_of_the_spec_table():
    rows = {int(n) for n in re.findall(r'<span id="row-(\d+)"></span>', (DOCS / "spec.md").read_text(encoding="utf-8"))}
    assert rows == set(range(1, 28))
    cited: set[int] = set()
    for match in re.finditer(r"\b[Rr]ows? (\d+(?:\s*(?:[-–/]|and|,)\s*\d+)*)", code_text()):
        cited.update(int(n) for n in re.findall(r"\d+", match.group(1)))
    assert len(cited) >= 10
    assert not cited - rows, f"the code cites rows {sorted(cited - rows)}, which §10 of docs/spec.md does not have"


def test_every_cited_anchor_section_is_in_docs_anchors():
    ids = set(re.findall(r"\{#a(\d+[a-z]?)\}", (DOCS / "anchors.md").read_text(encoding="utf-8")))
    cited: set[str] = set()
    for match in re.finditer(r"anchors(?:\.md)? §(\d+[a-z]?(?:(?:/|, )§?\d+[a-z]?)*)", code_text()):
        cited.update(re.findall(r"\d+[a-z]?", match.group(1)))
    assert cited, "no 'anchors §N' found in the code"
    assert not cited - ids, f"the code cites anchors §{sorted(cited - ids)}, which docs/anchors.md does not have"


# -- flags and log keys -----------------------------------------------------------------------------

def test_every_flag_is_documented():
    defined: set[str] = set()
    for path in CODE:
        if path.suffix != ".py":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.search(r"add_argument\(\"(--[a-z][a-z0-9_]*)\"", line)
            if match and "SUPPRESS" not in line:
                defined.add(match.group(1))
    assert "--timesteps_per_actorbatch" in defined and "--n_steps" in defined
    docs = "\n".join(page.read_text(encoding="utf-8") for page in DOCS.glob("*.md"))
    missing = sorted(flag for flag in defined if not re.search(re.escape(flag) + r"(?![a-z0-9_])", docs))
    assert not missing, f"flags no docs page mentions: {', '.join(missing)} (docs/cli.md lists the flags)"


def test_every_renamed_log_key_is_in_the_cli_page():
    """docs/cli.md's table of [SB] -> [B] PPO2 names against tfppo's log_keys.BASELINES_PPO2."""
    (module,) = (ROOT / "tfppo").rglob("log_keys.py")
    mapping = None
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", None) == "BASELINES_PPO2" for t in targets):
                mapping = ast.literal_eval(node.value)
    assert mapping, f"no BASELINES_PPO2 in {module}"
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    for sb_name, b_name in mapping.items():
        assert re.search(rf"\| `{re.escape(sb_name)}` \| `{re.escape(b_name)}` \|", cli), \
            f"docs/cli.md has no row | `{sb_name}` | `{b_name}` | in its PPO2 log-key table"
