"""docs/faults.md is generated from the tests' fault markers and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("make_faults", ROOT / "docs" / "make_faults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_faults_page_lists_every_marked_test():
    make_faults = _generator()
    rows = make_faults.fault_rows()
    assert len(rows) >= 20, f"only {len(rows)} fault markers found"
    assert all(tried.strip() and outcome.strip() for tried, outcome, _ in rows)
    page = (ROOT / "docs" / "faults.md").read_text(encoding="utf-8")
    assert page == make_faults.render(rows), "docs/faults.md is out of date: run python docs/make_faults.py"
