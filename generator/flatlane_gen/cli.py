"""Command line: flatlane-gen [-I DIR]... [--lang L]... -o OUT [--depfile F] [--list-outputs]
[--dump-ir] SCHEMA...

Exit codes: 0 success, 1 schema error (flatc or Flatlane validation; message on stderr),
2 usage error (including asking for a language whose templates do not exist yet).

Outputs per root schema `x.fbs`:
  --lang cpp   OUT/<f>_generated.h for every file f of the include closure (flatc --cpp) and
               OUT/x.flatlane.hpp (message traits, channel structs, typed endpoints)
  --lang python  flatc's modules for every file of the include closure (flatc --python: one
               OUT/<namespace dirs>/<Type>.py per definition and an __init__.py per namespace
               directory; the framework's flatlane.Void ships with the runtime package) and
               OUT/x_flatlane.py (message traits, channel specs, typed endpoint classes)
  --dump-ir    OUT/x.ir.json
  --lang csharp  OUT/<f>_generated.cs for every file f of the closure that declares types
               (span-based FlatBuffers views, verifiers and builders; flatlane.Void ships with
               the runtime) and OUT/x.flatlane.cs (channel specs and typed endpoint classes)

Files are written only when their content changes, so a rebuild after an unrelated schema edit
recompiles nothing. For build systems that compare timestamps, `--stamp FILE` touches FILE on every
run and makes it the depfile's target: use it as the build rule's output and the generated files
as byproducts (CMake's `flatlane_generate()` does this).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import SchemaError
from . import backends
from .frontend import find_flatc, framework_include_dir, load
from .ir import Schema

log = logging.getLogger("flatlane.gen")

LANGUAGES = ("cpp", "python", "csharp")
# Languages whose templates exist; the others are accepted by the parser and refused clearly.
IMPLEMENTED = ("cpp", "python", "csharp")
EXIT_OK, EXIT_SCHEMA, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flatlane-gen",
        description="Generate Flatlane endpoints from FlatBuffers schemas (flatc is the parser).")
    p.add_argument("schemas", nargs="+", metavar="SCHEMA", help="root .fbs files")
    p.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR",
                   help="include directory for flatc (repeatable); flatlane.fbs's own directory "
                        "is always searched last")
    p.add_argument("--lang", dest="langs", action="append", default=[], choices=LANGUAGES,
                   help="language to emit (repeatable): cpp, python, csharp")
    p.add_argument("-o", dest="out", required=True, metavar="OUT", help="output directory")
    p.add_argument("--depfile", metavar="F",
                   help="write a Make-style depfile: outputs depend on every .fbs of the closure")
    p.add_argument("--list-outputs", action="store_true",
                   help="print the files that would be written, one per line; write nothing")
    p.add_argument("--dump-ir", action="store_true", help="write OUT/<schema>.ir.json")
    p.add_argument("--stamp", metavar="FILE",
                   help="touch FILE after generating and name it as the depfile's target")
    p.add_argument("--flatc", metavar="PATH",
                   help="flatc executable (default: $FLATLANE_FLATC, then PATH)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _setup_logging(verbosity: int) -> None:
    if log.handlers:  # main() may run several times in one process (tests)
        for h in list(log.handlers):
            log.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("flatlane-gen: %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if verbosity == 0 else
                 logging.INFO if verbosity == 1 else logging.DEBUG)
    log.propagate = False


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def outputs_for(schema: Schema, out_dir: str, dump_ir: bool,
                langs: Sequence[str] = ()) -> list[str]:
    """Files written for one root schema, computed from the IR."""
    outs = []
    for lang in langs:
        outs += backends.get(lang).outputs(schema, out_dir)
    if dump_ir:
        outs.append(os.path.join(out_dir, _stem(schema.root_file) + ".ir.json"))
    return outs


def _escape_make(path: str) -> str:
    return path.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")


def depfile_text(targets: Sequence[str], deps: Sequence[str]) -> str:
    lines = [" ".join(_escape_make(t) for t in targets) + ":"]
    lines += [f" {_escape_make(d)}" for d in deps]
    return " \\\n".join(lines) + "\n"


def _write(path: str, text: str) -> bool:
    """Writes `text` unless the file already holds it; True if written."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def _touch(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8"):
        pass
    os.utime(path, None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)

    langs = list(dict.fromkeys(args.langs))
    missing = [lang for lang in langs if lang not in IMPLEMENTED]
    if missing:
        print(f"flatlane-gen: error: no templates exist yet for --lang {', '.join(missing)} "
              f"(this version emits: {', '.join(IMPLEMENTED)})", file=sys.stderr)
        return EXIT_USAGE

    stems: dict[str, str] = {}
    for s in args.schemas:
        other = stems.setdefault(_stem(s), s)
        if other != s:
            print(f"flatlane-gen: error: {other} and {s} would write the same outputs "
                  f"(same file name); run them separately or rename one", file=sys.stderr)
            return EXIT_USAGE

    schemas: list[Schema] = []
    failed = False
    for path in args.schemas:
        try:
            schemas.append(load(path, args.include_dirs, args.flatc))
        except SchemaError as e:
            print(f"flatlane-gen: error: {e}", file=sys.stderr)
            failed = True
    if failed:
        return EXIT_SCHEMA

    planned = [(sch, outputs_for(sch, args.out, args.dump_ir, langs)) for sch in schemas]
    # Two root schemas may share includes (and so flatc headers): each file once.
    outputs = list(dict.fromkeys(o for _, outs in planned for o in outs))
    if args.list_outputs:
        for o in outputs:
            print(o)
        return EXIT_OK

    contents: dict[str, str] = {}
    try:
        for sch in schemas:
            for lang in langs:
                ctx = backends.RenderContext(
                    flatc=find_flatc(args.flatc),
                    include_dirs=tuple(os.path.abspath(d) for d in args.include_dirs)
                    + (framework_include_dir(),))
                contents.update(backends.get(lang).render(sch, args.out, ctx))
            if args.dump_ir:
                contents[os.path.join(args.out, _stem(sch.root_file) + ".ir.json")] = (
                    json.dumps(sch.to_json(), indent=2, ensure_ascii=False) + "\n")
    except SchemaError as e:
        print(f"flatlane-gen: error: {e}", file=sys.stderr)
        return EXIT_SCHEMA
    assert sorted(contents) == sorted(outputs), "back end wrote other files than it listed"
    for o in outputs:
        log.info("%s %s", "wrote" if _write(o, contents[o]) else "unchanged", o)
    if not outputs:
        log.info("schemas are valid; nothing to emit (no --dump-ir, no --lang)")

    if args.stamp:
        _touch(args.stamp)
    if args.depfile:
        deps = sorted({f.path for sch in schemas for f in sch.files})
        targets = [args.stamp] if args.stamp else (outputs or [args.depfile])
        _write(args.depfile, depfile_text(targets, deps))
        log.info("wrote %s", args.depfile)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
