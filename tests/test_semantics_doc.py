"""docs/semantics.md is generated from the presets and must stay in sync."""
from pathlib import Path

from tfppo.config.semantics import Semantics
from tfppo.config.semantics_doc import ROWS, render

ROOT = Path(__file__).resolve().parents[1]


def test_committed_doc_matches_the_presets():
    assert (ROOT / "docs" / "semantics.md").read_text() == render(), "run python scripts/semantics_table.py"


def test_every_behavioural_row_of_the_spec_is_mapped():
    assert sorted(row.number for row in ROWS) == [*range(1, 22), 23, 24, 25, 27]
    mapped = {name for row in ROWS for name in row.fields}
    assert mapped <= set(Semantics.field_names())
    # every switch appears in a row but the extensions none of the four originals has (SB3's target_kl and
    # the PPO paper's PPO-Penalty), which the doc describes beside the table
    assert set(Semantics.field_names()) - mapped == {"target_kl", "policy_loss", "kl_beta", "kl_target"}


def test_doc_is_linked_from_the_readme():
    assert "docs/semantics.md" in (ROOT / "README.md").read_text()
