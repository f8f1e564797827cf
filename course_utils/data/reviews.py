"""Labelled movie-review sentences for lesson 06 (X6) and 07: real data, offline by default.

Two sources, one interface, ``load_reviews(split) -> [(label, text), ...]`` with
label 1 = positive, 0 = negative:

- ``"vader"`` (the offline default): 10,605 movie-review sentences from Rotten
  Tomatoes, each rated by human raters from -4 (extremely negative) to +4
  (extremely positive), published with the VADER paper (Hutto & Gilbert, ICWSM
  2014). The file ships inside the PyPI *source* distribution of
  ``vadersentiment==3.3.2`` (not in its wheel), so ``course data prepare``
  (:func:`prepare`) gets it with pip during setup, verifies it by SHA-256 and
  copies it to ``data_dir()/reviews/``. After that everything runs offline.
- ``"imdb"``: the IMDB Large Movie Review Dataset (:mod:`course_utils.data.imdb`),
  when its archive is in the cache.
- ``"auto"``: ``"imdb"`` if its archive is cached, else ``"vader"``; prints which.

Label rule (vader): a sentence's label comes from the mean of its raters'
scores. Mean >= +0.5 -> 1 (positive), mean <= -0.5 -> 0 (negative); sentences
with |mean| < 0.5 are dropped: the raters put them within half a step of
neutral (factual or mixed sentences, e.g. "Effective but too tepid biopic" has
-0.6 and stays; a plot summary sits near 0), so a binary label would be noise.
Two sentences occur twice in the file; only their first copy is kept. Of the
10,603 distinct sentences the rule keeps 4,995 positive and 5,075 negative and
drops 533 near-neutral ones (``label_summary()`` prints these counts).

Splits are 80/10/10 train/val/test, fixed by ``seed``: each sentence id is
ranked by ``sha256(f"{seed}:{id}")`` (platform- and version-independent), and
the split is decided BEFORE the label rule, so changing the neutral band never
moves a sentence into another split.

The same sdist also ships VADER's human-rated word list, ``vader_lexicon.txt``
(7,506 tokens, each rated -4 .. +4 by ten people). ``load_lexicon()`` returns it
as ``{token: mean rating}``, extracted from the cached sdist and checked by
SHA-256 like the sentences; lesson 06 uses it as an outside judge of which
sentiment a word carries.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import NamedTuple

from course_utils.data.cache import allow_download, data_dir, downloads_dir
from course_utils.data.pypi import package_file

PACKAGE = "vadersentiment==3.3.2"
SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
INNER_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
FILE_NAME = "movieReviewSnippets_GroundTruth.txt"
FILE_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
N_SNIPPETS = 10605
NEUTRAL_BAND = 0.5
SPLITS = ("train", "val", "test")
FRACTIONS = (0.8, 0.1, 0.1)
SOURCES = ("auto", "vader", "imdb")


class ReviewsNotPrepared(RuntimeError):
    """The offline review data is not in the cache and cannot be fetched now."""


class Snippet(NamedTuple):
    id: int
    rating: float  # mean human rating, -4 .. +4
    text: str


# -- preparing the file (setup time; the only step that uses the network) ------------------
def reviews_dir() -> Path:
    return data_dir() / "reviews"


def snippets_path() -> Path:
    """Where the prepared sentence file lives: ``data_dir()/reviews/movieReviewSnippets_GroundTruth.txt``."""
    return reviews_dir() / FILE_NAME


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and _sha256(path.read_bytes()) == sha256


def _checked(data: bytes, member: str, sdist: str | Path, sha256: str) -> bytes:
    if _sha256(data) != sha256:
        raise ReviewsNotPrepared(f"{member} inside {sdist} has SHA-256 {_sha256(data)}, "
                                 f"expected {sha256}: a different or corrupt file.")
    return data


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, target)  # atomic: never half a file in the cache


def _sdist(sdist: str | Path | None, quiet: bool) -> Path:
    return package_file(PACKAGE, SDIST, SDIST_SHA256, binary=False, given=sdist,
                        error=ReviewsNotPrepared, quiet=quiet)


def is_prepared() -> bool:
    return _verified(snippets_path(), FILE_SHA256)


def extract_snippets(sdist: str | Path) -> bytes:
    """The sentence file's bytes, read from the sdist's nested ``hutto_ICWSM_2014.tar.gz``."""
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = outer.extractfile(INNER_ARCHIVE).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        data = inner.extractfile(INNER_MEMBER).read()
    return _checked(data, INNER_MEMBER, sdist, FILE_SHA256)


def prepare(sdist: str | Path | None = None, *, quiet: bool = False) -> Path:
    """Put the VADER movie-review sentences into the cache; return the file's path.

    Idempotent: a verified file already there returns at once. Otherwise the
    sdist is taken from ``sdist=``, else from ``downloads_dir()/vaderSentiment-3.3.2.tar.gz``,
    else downloaded with ``pip download --no-deps --no-binary :all: vadersentiment==3.3.2``
    (network needed), and the sentence file is extracted and checked against
    ``FILE_SHA256``. Called by ``course data prepare`` (``make lab`` / ``make test``).
    """
    target = snippets_path()
    if is_prepared():
        if not quiet:
            print(f"reviews: already prepared at {target}")
        return target
    _write_atomic(target, extract_snippets(_sdist(sdist, quiet)))
    if not quiet:
        print(f"reviews: wrote {target}")
        print(label_summary())
    return target


# -- parsing and labelling ---------------------------------------------------------------
def parse_snippets(text: str) -> list[Snippet]:
    """Parse the ground-truth format: one ``id<TAB>mean rating<TAB>sentence`` per line."""
    snippets = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise ValueError(f"line {line_no}: expected 'id<TAB>rating<TAB>text', got {line[:60]!r}")
        snippets.append(Snippet(int(parts[0]), float(parts[1]), parts[2].strip()))
    return snippets


def read_snippets(path: str | Path | None = None) -> list[Snippet]:
    """All sentences of the prepared file (or of ``path``), in file order."""
    path = Path(path) if path is not None else _require_prepared()
    return parse_snippets(path.read_bytes().decode("utf-8"))


def rating_to_label(rating: float, neutral_band: float = NEUTRAL_BAND) -> int | None:
    """1 if ``rating >= neutral_band``, 0 if ``rating <= -neutral_band``, else None (dropped)."""
    if rating >= neutral_band:
        return 1
    if rating <= -neutral_band:
        return 0
    return None


def _dedupe(snippets: list[Snippet]) -> list[Snippet]:
    seen, kept = set(), []
    for s in snippets:
        if s.text not in seen:
            seen.add(s.text)
            kept.append(s)
    return kept


def split_of(key: object, seed: int = 0, fractions: tuple[float, float, float] = FRACTIONS) -> str:
    """Which split a single item goes to: ``sha256(f"{seed}:{key}")`` mapped to [0, 1)."""
    u = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:15], 16) / 16 ** 15
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def split_snippets(snippets: list[Snippet], seed: int = 0,
                   fractions: tuple[float, float, float] = FRACTIONS) -> dict[str, list[Snippet]]:
    """80/10/10 by rank of ``sha256(f"{seed}:{id}")``: exact sizes, deterministic, no overlap."""
    order = sorted(snippets, key=lambda s: hashlib.sha256(f"{seed}:{s.id}".encode()).hexdigest())
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:]}


def label_summary(path: str | Path | None = None, neutral_band: float = NEUTRAL_BAND) -> str:
    """The counts behind the label rule, as printed by :func:`prepare`."""
    raw = read_snippets(path)
    kept = _dedupe(raw)
    labels = [rating_to_label(s.rating, neutral_band) for s in kept]
    return (f"reviews: {len(raw):,} rated sentences, {len(raw) - len(kept)} duplicates removed; "
            f"{labels.count(1):,} positive (mean >= {neutral_band}), {labels.count(0):,} negative "
            f"(mean <= -{neutral_band}), {labels.count(None):,} near-neutral dropped")


# -- the public loader ---------------------------------------------------------------------
def resolve_source(source: str = "auto", verbose: bool = True) -> str:
    """``"vader"`` or ``"imdb"``; ``"auto"`` picks imdb when its archive is cached."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")
    if source != "auto":
        return source
    from course_utils.data.imdb import imdb_is_cached

    chosen = "imdb" if imdb_is_cached() else "vader"
    if verbose:
        why = ("the IMDB archive is in the cache" if chosen == "imdb"
               else "no IMDB archive in the cache; the offline default")
        print(f"reviews: source='auto' -> '{chosen}' ({why})")
    return chosen


def load_reviews(split: str, *, seed: int = 0, source: str = "auto",
                 neutral_band: float = NEUTRAL_BAND, verbose: bool = True) -> list[tuple[int, str]]:
    """Labelled reviews of one split: a list of ``(label, text)``, 1 = positive, 0 = negative.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (80/10/10 for vader; for imdb,
            val is 10% of IMDB's train split and test is IMDB's test split).
        seed: fixes the split; the same seed always gives the same sentences.
        source: ``"vader"`` (offline default), ``"imdb"`` or ``"auto"``.
        neutral_band: vader only: drop sentences with |mean rating| below it.
        verbose: print which source was used and the split's label counts.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    chosen = resolve_source(source, verbose=verbose)
    if chosen == "imdb":
        rows = _imdb_rows(split, seed)
    else:
        part = split_snippets(_dedupe(read_snippets()), seed)[split]
        rows = [(label, s.text) for s in part
                if (label := rating_to_label(s.rating, neutral_band)) is not None]
    if verbose:
        pos = sum(label for label, _ in rows)
        print(f"reviews[{chosen}] {split}: {len(rows):,} texts ({pos:,} positive, "
              f"{len(rows) - pos:,} negative), seed={seed}")
    return rows


def _imdb_rows(split: str, seed: int) -> list[tuple[int, str]]:
    from course_utils.data.imdb import imdb_path, iter_imdb_members

    rows = []
    path = imdb_path()
    archive_split = "test" if split == "test" else "train"
    for name, label, _, text in iter_imdb_members(path, archive_split):
        if split != "test":
            in_val = split_of(name, seed, (0.9, 0.1, 0.0)) != "train"
            if in_val != (split == "val"):
                continue
        rows.append((label, text.replace("<br />", " ")))
    return rows


def _require_prepared() -> Path:
    if is_prepared():
        return snippets_path()
    if allow_download():  # e.g. in Colab: prepare on first use
        return prepare()
    path = snippets_path()
    if path.is_file():  # there, but not the file we expect: truncated or edited
        raise ReviewsNotPrepared(
            f"The offline review sentences are in the data cache ({path}) but the file fails its "
            f"checksum (SHA-256 {_sha256(path.read_bytes())[:16]}..., {path.stat().st_size:,} bytes; "
            f"expected {FILE_SHA256[:16]}...): it is truncated or was changed.\n"
            f"Delete it and run `course data prepare` to extract it again from the {PACKAGE} source "
            "distribution (or in Python: from course_utils.data.reviews import prepare; prepare()).")
    raise ReviewsNotPrepared(
        f"The offline review sentences are not in the data cache ({snippets_path()}).\n"
        "Run `course data prepare` once with a network (make lab / make test do it); it "
        f"downloads the source distribution of {PACKAGE} with pip and extracts the file.\n"
        "Or in Python: from course_utils.data.reviews import prepare; prepare()")


def describe_source(source: str = "vader") -> str:
    """Where the data comes from, for the notebook to print and cite."""
    if source == "imdb":
        return ("IMDB Large Movie Review Dataset v1.0: 50,000 movie reviews (25,000 train / "
                "25,000 test), labelled positive (>= 7 stars) or negative (<= 4 stars).\n"
                "Maas, Daly, Pham, Huang, Ng & Potts (2011), 'Learning Word Vectors for "
                "Sentiment Analysis', ACL. https://ai.stanford.edu/~amaas/data/sentiment/")
    if source != "vader":
        raise ValueError("describe_source takes 'vader' or 'imdb'.")
    return ("VADER movie-review sentences: 10,605 sentence-level snippets from Rotten Tomatoes "
            "reviews, each with the mean of its human raters' sentiment scores (-4 .. +4).\n"
            "Hutto & Gilbert (2014), 'VADER: A Parsimonious Rule-based Model for Sentiment "
            "Analysis of Social Media Text', ICWSM-14. Its README traces the snippets to the "
            "movie reviews of Pang & Lee (2004): Rotten Tomatoes sentences, as in Pang & Lee's "
            "sentence polarity data.\n"
            f"Shipped in the source distribution of {PACKAGE} on PyPI (MIT licence), file "
            f"additional_resources/hutto_ICWSM_2014.tar.gz -> {INNER_MEMBER}.\n"
            f"Label rule: mean >= +{NEUTRAL_BAND} positive, <= -{NEUTRAL_BAND} negative, "
            "near-neutral sentences dropped.")


# -- the VADER sentiment lexicon (lesson 06, X6: an outside judge of a word's sentiment) --
# The same sdist ships VADER's word list: 7,520 lines, 7,506 distinct tokens (words, slang,
# emoticons; 14 tokens have two lines, the first one counts), each with the mean of 10 human
# raters' scores from -4 (extremely negative) to +4 (extremely positive). Lesson 06
# uses it to label the sentiment side of a word without asking the model that is being judged.
LEXICON_MEMBER = "vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt"
LEXICON_FILE = "vader_lexicon.txt"
LEXICON_SHA256 = "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5"
N_LEXICON = 7506  # distinct tokens


def lexicon_path() -> Path:
    """Where the prepared lexicon lives: ``data_dir()/reviews/vader_lexicon.txt``."""
    return reviews_dir() / LEXICON_FILE


def lexicon_is_prepared() -> bool:
    return _verified(lexicon_path(), LEXICON_SHA256)


def extract_lexicon(sdist: str | Path) -> bytes:
    """The lexicon file's bytes, read from the sdist and checked against ``LEXICON_SHA256``."""
    with tarfile.open(sdist, "r:gz") as outer:
        data = outer.extractfile(LEXICON_MEMBER).read()
    return _checked(data, LEXICON_MEMBER, sdist, LEXICON_SHA256)


def prepare_lexicon(sdist: str | Path | None = None, *, quiet: bool = False) -> Path:
    """Put the VADER lexicon into the cache; return its path. Idempotent, like :func:`prepare`.

    The sdist comes from ``sdist=``, else the download cache (where :func:`prepare` keeps
    it, so this needs no network after ``course data prepare``), else pip (network).
    """
    target = lexicon_path()
    if lexicon_is_prepared():
        return target
    _write_atomic(target, extract_lexicon(_sdist(sdist, quiet)))
    if not quiet:
        print(f"reviews: wrote {target}")
    return target


def parse_lexicon(text: str) -> dict[str, float]:
    """``token<TAB>mean<TAB>std<TAB>[10 ratings]`` lines -> ``{token: mean rating}``.

    A token listed twice keeps its first line's rating.
    """
    scores = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise ValueError(f"lexicon line {line_no}: expected 'token<TAB>mean<TAB>...', got {line[:60]!r}")
        scores.setdefault(parts[0], float(parts[1]))
    return scores


def load_lexicon(path: str | Path | None = None) -> dict[str, float]:
    """VADER's human-rated lexicon, ``{token: mean rating in -4 .. +4}`` (7,506 tokens).

    Without ``path`` it reads the prepared copy, extracting it first from the cached sdist
    when needed (offline); without a cached sdist it downloads only if downloads are allowed.
    """
    if path is None:
        if not lexicon_is_prepared():
            if not ((downloads_dir() / SDIST).is_file() or allow_download()):
                raise ReviewsNotPrepared(
                    f"The VADER lexicon is not in the data cache ({lexicon_path()}) and the "
                    f"{PACKAGE} source distribution is not in {downloads_dir()}.\n"
                    "Run `course data prepare` once with a network, then (offline) "
                    "from course_utils.data.reviews import prepare_lexicon; prepare_lexicon()")
            prepare_lexicon(quiet=True)
        path = lexicon_path()
    return parse_lexicon(Path(path).read_bytes().decode("utf-8"))
