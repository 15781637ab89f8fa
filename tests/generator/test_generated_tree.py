"""generated/ is exactly what the generator writes today (golden files for every language)."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_generated_tree_matches_a_fresh_run(tmp_path: Path) -> None:
    fresh = tmp_path / "generated"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "regenerate.py"), "--into", str(fresh)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    checked_in = REPO / "generated"
    expected = _files(fresh)
    actual = _files(checked_in) - {"README.md", "manifest.json"}
    assert expected, "the manifest produced no files"
    assert actual == expected, (f"generated/ differs in its files: missing {sorted(expected - actual)}, "
                                f"stale {sorted(actual - expected)}; run scripts/regenerate.py")
    differ = [f for f in sorted(expected)
              if not filecmp.cmp(fresh / f, checked_in / f, shallow=False)]
    assert not differ, f"generated/ is out of date for {differ}; run scripts/regenerate.py"
