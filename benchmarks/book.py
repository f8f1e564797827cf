"""Benchmark: the course book's build budgets (issue 18).

    .venv/bin/python benchmarks/book.py            # BOOK_FAST=1 builds
    .venv/bin/python benchmarks/book.py --full     # full mode (runs each lesson once if not cached)
    .venv/bin/python benchmarks/book.py --stale-ok # the build's own cost from the latest cached runs

1. A build into an empty staging folder that shares the execution cache
   (_build/book/cache): the lessons run only if not cached yet (their time is
   reported separately); the rest is the build's own cost. Budget: 3 minutes.
2. The same build again with nothing changed. Budget: 1 minute.
3. The site's size. Budget: 60 MB.
Prints the times, the page count and the size, and exits 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full mode instead of BOOK_FAST=1")
    parser.add_argument("--stale-ok", action="store_true",
                        help="render from each lesson's latest cached run even if the code changed since")
    args = parser.parse_args(argv)
    build = _builder().build
    fast = not args.full
    cache = ROOT / "_build" / "book" / "cache"
    ok = True
    with tempfile.TemporaryDirectory(prefix="book-bench-") as tmp:
        work, out = Path(tmp), Path(tmp) / "html"
        start = time.perf_counter()
        first = build(fast, out, work, cache=cache, log=lambda *_: None, stale_ok=args.stale_ok)
        t_first = time.perf_counter() - start
        ran = sum(i["seconds"] for i in first["lessons"].values() if i["origin"] == "executed")
        start = time.perf_counter()
        build(fast, out, work, cache=cache, log=lambda *_: None, stale_ok=args.stale_ok)
        t_again = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        pages = len(first["pages"])
    own = t_first - ran
    print(f"book ({'fast' if fast else 'full'} mode): first build {t_first:.1f} s, of which lesson runs "
          f"{ran:.1f} s -> the build's own cost {own:.1f} s (budget 180 s)")
    print(f"rebuild with nothing changed: {t_again:.1f} s (budget 60 s)")
    print(f"site: {pages} HTML pages, {size / 1e6:.1f} MB (budget 60 MB)")
    for label, value, budget in (("build", own, 180), ("rebuild", t_again, 60), ("size", size / 1e6, 60)):
        if value > budget:
            print(f"OVER BUDGET: {label} {value:.1f} > {budget}")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
