"""The documentation site builds with ``mkdocs build --strict`` and holds what a reader needs.

Strict: any warning (a broken link or anchor, a page missing from the nav, a docstring that
mkdocstrings cannot read) fails the build. The site goes to a temporary folder, never ``site/``.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_docs_commands import cli_options

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's banner about MkDocs 2.0
    proc = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(site)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    return proc, site


@pytest.fixture(scope="module")
def site(build) -> Path:
    proc, site = build
    if proc.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return site


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page (``reference/cli.md`` -> site/reference/cli/index.html)."""
    built = site / ("index.html" if page == "index.md" else f"{page.removesuffix('.md')}/index.html")
    body = built.read_text(encoding="utf-8")
    body = body[body.index("<article"):body.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def nav_pages() -> list[str]:
    from mkdocs.config import load_config

    def walk(items) -> list[str]:
        return [page for item in items for value in item.values()
                for page in (walk(value) if isinstance(value, list) else [value])]

    return walk(load_config(str(ROOT / "mkdocs.yml")).nav)


def test_strict_build_passes_without_warnings(build):
    proc, _ = build
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert "WARNING" not in proc.stderr, proc.stderr


def test_every_nav_page_is_built(site):
    pages = nav_pages()
    assert "reference/cli.md" in pages and "reference/api.md" in pages and len(pages) >= 17
    for page in pages:
        assert len(page_text(site, page)) > 200, f"{page} is (nearly) empty"


def test_cli_reference_shows_every_command_and_option(site):
    text = page_text(site, "reference/cli.md")
    commands = cli_options()
    for path, options in commands.items():
        assert " ".join(("zoo", *path, "[OPTIONS]")) in text, f"zoo {' '.join(path)} is missing"
    assert len(commands) >= 18  # zoo, its 12 commands and the 5 of zoo data
    for option in ("--val-every", "--per-class", "--split-of-run", "--rdzv-endpoint", "--top-k"):
        assert option in text
    assert "Sentinel" not in text  # click's internal marker for "no default" must not leak


def test_api_reference_documents_the_public_api(site):
    text = page_text(site, "reference/api.md")
    for name in ("zoo.runtime", "zoo.training", "zoo.data", "zoo.export", "ModelCard", "ZooError",
                 "split_each_label", "Predictor", "TrainOptions", "WeightsUnavailable"):
        assert name in text, name
    assert "create_model(" in text and "Predictor(" in text and "val_every" in text  # signatures
    assert ":class:" not in text and ":func:" not in text  # docstrings' Sphinx roles shown as code
