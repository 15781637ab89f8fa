#!/usr/bin/python3
"""Regenerates generated/ from the schemas listed in generated/manifest.json.

    scripts/regenerate.py            rewrite generated/ (stale files are removed)
    scripts/regenerate.py --into D   write the same tree under D instead (used by the golden test)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "generator"))

from flatlane_gen.cli import main as flatlane_gen  # noqa: E402


def regenerate(into: str) -> int:
    with open(os.path.join(ROOT, "generated", "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    for e in manifest["entries"]:
        out = os.path.join(into, os.path.relpath(os.path.join(ROOT, e["out"]), os.path.join(ROOT, "generated")))
        shutil.rmtree(out, ignore_errors=True)
        args = []
        for d in e["include_dirs"]:
            args += ["-I", os.path.join(ROOT, d)]
        for lang in e["langs"]:
            args += ["--lang", lang]
        if e["dump_ir"]:
            args.append("--dump-ir")
        rc = flatlane_gen(args + ["-o", out, os.path.join(ROOT, e["schema"])])
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--into", default=os.path.join(ROOT, "generated"))
    sys.exit(regenerate(p.parse_args().into))
