"""Lesson 06's text pipeline: tokenizer rules, Vocab, subword tokenizers, and the review data
(IMDB parser against a generated archive on 127.0.0.1, the VADER sentence file parser and
label rule, deterministic splits, and the real prepared data when it is in the cache)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from course_utils.data import imdb as imdb_mod
from course_utils.data import reviews
from course_utils.text.subword import (CLS_ID, MASK_ID, PAD_ID, SEP_ID, SPECIAL_TOKENS, UNK_ID,
                                       train_subword_tokenizer, unknown_rate)
from course_utils.text.tokenize import basic_english, get_tokenizer
from course_utils.text.vocab import TokenNotFoundError, Vocab, build_vocab_from_iterator, vocab

# ---------------------------------------------------------------- tokenizer rules
tok = get_tokenizer("basic_english")


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", ["hello", ",", "world", "!"]),                       # case + punctuation
    ("Don't", ["don", "'", "t"]),                                             # apostrophe split off
    ("It's 3.5 stars", ["it", "'", "s", "3", ".", "5", "stars"]),             # numbers split at '.'
    ("21st-century well-made 50% $5", ["21st-century", "well-made", "50%", "$5"]),  # kept inside words
    ('He said "wow" (twice)?', ["he", "said", "wow", "(", "twice", ")", "?"]),      # quotes dropped
    ("a;b:c", ["a", "b", "c"]),                                               # ; and : removed
    ("line one<br />line two", ["line", "one", "line", "two"]),               # IMDB line breaks
    ("  tabs\tand\nnewlines   ", ["tabs", "and", "newlines"]),                # whitespace runs
    ("...", [".", ".", "."]),
    ("", []),
    ("   ", []),
    ("Café ÉTÉ", ["café", "été"]),
])
def test_basic_english_rules(text, expected):
    assert tok(text) == expected


def test_get_tokenizer_variants():
    assert get_tokenizer(None)("Keep Case, please!") == ["Keep", "Case,", "please!"]
    custom = lambda s: list(s)  # noqa: E731
    assert get_tokenizer(custom) is custom
    assert get_tokenizer("basic_english") is basic_english
    with pytest.raises(ValueError, match="basic_english"):
        get_tokenizer("spacy")
    with pytest.raises(ValueError):
        tok(["not", "a", "string"])


# ---------------------------------------------------------------- Vocab
TEXTS = ["the cat sat", "the cat ran", "the dog sat", "a bird"]


def _vocab(**kw):
    return build_vocab_from_iterator(map(tok, TEXTS), **kw)


def test_vocab_order_specials_first_then_by_count_then_alphabet():
    v = _vocab(specials=["<pad>", "<unk>"])
    # counts: the 3, cat 2, sat 2, then a/bird/dog/ran 1 each (alphabetical on ties)
    assert v.get_itos() == ["<pad>", "<unk>", "the", "cat", "sat", "a", "bird", "dog", "ran"]
    assert [v[t] for t in v.get_itos()] == list(range(len(v)))
    assert v.get_stoi() == {t: i for i, t in enumerate(v.get_itos())}
    last = _vocab(specials=["<pad>", "<unk>"], special_first=False)
    assert last.get_itos()[-2:] == ["<pad>", "<unk>"] and last["the"] == 0


def test_vocab_min_freq_and_max_tokens():
    assert _vocab(min_freq=2).get_itos() == ["the", "cat", "sat"]
    v = _vocab(specials=["<unk>"], max_tokens=4)
    assert v.get_itos() == ["<unk>", "the", "cat", "sat"] and len(v) == 4
    # specials that also occur in the text do not eat into max_tokens
    w = build_vocab_from_iterator([["<unk>", "x", "x", "y"]], specials=["<unk>"], max_tokens=3)
    assert w.get_itos() == ["<unk>", "x", "y"]
    with pytest.raises(ValueError):
        _vocab(specials=["<pad>", "<unk>"], max_tokens=2)


def test_unknown_tokens_and_default_index():
    v = _vocab(specials=["<unk>"])
    assert "cat" in v and "zebra" not in v
    assert v.get_default_index() is None
    with pytest.raises(TokenNotFoundError, match="default index is not set"):
        v["zebra"]
    with pytest.raises(KeyError):        # also a KeyError ...
        v.lookup_indices(["cat", "zebra"])
    with pytest.raises(RuntimeError):    # ... and a RuntimeError, like torchtext's
        v["zebra"]
    v.set_default_index(v["<unk>"])
    assert v.get_default_index() == 0
    assert v.lookup_indices(["cat", "zebra"]) == [v["cat"], 0]
    assert v(["zebra"]) == [0]
    v.set_default_index(None)
    with pytest.raises(TokenNotFoundError):
        v["zebra"]
    with pytest.raises(IndexError):
        v.set_default_index(len(v))


def test_lookup_round_trip_and_views():
    import torch

    v = _vocab(specials=["<pad>", "<unk>"])
    ids = v.lookup_indices(tok("The dog sat"))
    assert v.lookup_tokens(ids) == ["the", "dog", "sat"]
    assert v.lookup_tokens(torch.tensor(ids)) == ["the", "dog", "sat"]
    with pytest.raises(IndexError):
        v.lookup_token(len(v))
    stoi, itos = v.stoi, v.itos
    with pytest.raises(TypeError):
        stoi["new"] = 99               # read-only view
    v.append_token("zebra")            # views are live
    assert stoi["zebra"] == len(v) - 1 and itos[-1] == "zebra" and len(itos) == len(v)
    copy = v.get_itos()
    copy.append("not-in-vocab")        # get_itos() is a copy
    assert "not-in-vocab" not in v
    with pytest.raises(ValueError):
        v.append_token("zebra")        # no duplicates
    v.insert_token("<bos>", 0)
    assert v["<bos>"] == 0 and v["<pad>"] == 1 and v.lookup_token(v["zebra"]) == "zebra"


def test_vocab_factory_and_bad_input():
    v = vocab({"b": 3, "a": 1, "c": 2}, min_freq=2, specials=["<unk>"])
    assert v.get_itos() == ["<unk>", "b", "c"]
    assert len(Vocab(["x", "y"])) == 2
    with pytest.raises(ValueError):
        Vocab(["x", "x"])
    with pytest.raises(ValueError, match="map\\(tokenizer"):
        build_vocab_from_iterator(["a string instead of token lists"])
    with pytest.raises(ValueError):
        v.lookup_indices("cat")


# ---------------------------------------------------------------- subword tokenizers
CORPUS = ["the movie was wonderful and the acting was wonderful",
          "a dull movie with dull acting", "wonderfully dull", "the plot was unwatchable"] * 20


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_subword_tokenizer_trains_encodes_decodes(kind):
    t = train_subword_tokenizer(CORPUS, vocab_size=120, kind=kind, min_frequency=1)
    assert [t.token_to_id(s) for s in SPECIAL_TOKENS] == [PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID]
    assert (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID) == (0, 1, 2, 3, 4)
    assert t.get_vocab_size() <= 120
    enc = t.encode("The acting was wonderful")
    assert enc.ids[0] == CLS_ID and enc.ids[-1] == SEP_ID
    assert t.decode(enc.ids) == "the acting was wonderful"
    # an unseen word is spelled from pieces, not mapped to [UNK]
    plain = t.encode("wonderdull", add_special_tokens=False)
    assert len(plain.ids) >= 2 and UNK_ID not in plain.ids
    assert t.decode(plain.ids) == "wonderdull"
    # a character never seen in training is unknown
    assert UNK_ID in t.encode("zzz", add_special_tokens=False).ids
    assert unknown_rate(t, ["the movie", "zzz"]) == pytest.approx(
        sum(i == UNK_ID for i in t.encode("zzz", add_special_tokens=False).ids)
        / (len(t.encode("the movie", add_special_tokens=False).ids)
           + len(t.encode("zzz", add_special_tokens=False).ids)))


def test_subword_bad_input():
    with pytest.raises(ValueError):
        train_subword_tokenizer(CORPUS, kind="unigram")
    with pytest.raises(ValueError):
        train_subword_tokenizer("one string", vocab_size=50)


# ---------------------------------------------------------------- IMDB archive parser
def _tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


IMDB_FILES = {
    "aclImdb/README": "readme",
    "aclImdb/imdb.vocab": "the\nmovie\n",
    "aclImdb/train/pos/0_9.txt": "Loved it.<br />Truly.",
    "aclImdb/train/pos/1_8.txt": "Great fun, café scenes.",
    "aclImdb/train/neg/2_1.txt": "Awful.",
    "aclImdb/train/unsup/3_0.txt": "no label here",
    "aclImdb/train/labeledBow.feat": "0 0:1",
    "aclImdb/test/pos/4_10.txt": "A classic.",
    "aclImdb/test/neg/5_2.txt": "Boring!",
}


def test_imdb_parser_on_archive_from_local_server(local_server, data_home):
    body = _tar_gz(IMDB_FILES)
    known = "sha256:" + hashlib.sha256(body).hexdigest()
    local_server.add("/aclImdb_v1.tar.gz", body)
    url = local_server.url("/aclImdb_v1.tar.gz")
    train = list(imdb_mod.imdb("train", urls=[url], known_hash=known, download=True))
    assert sorted(train) == sorted([(1, "Loved it.<br />Truly."), (1, "Great fun, café scenes."),
                                    (0, "Awful.")])
    assert imdb_mod.imdb_is_cached()
    # second read comes from the cache: no new request, no network allowed
    test = list(imdb_mod.imdb("test", urls=[url], known_hash=known, download=False))
    assert sorted(test) == [(0, "Boring!"), (1, "A classic.")]
    assert local_server.hits == ["/aclImdb_v1.tar.gz"]
    with pytest.raises(ValueError):
        list(imdb_mod.imdb("val", urls=[url], known_hash=known))


def test_load_reviews_imdb_source_and_auto(data_home, monkeypatch, tmp_path):
    archive = tmp_path / "aclImdb_v1.tar.gz"
    archive.write_bytes(_tar_gz(IMDB_FILES))
    monkeypatch.setattr(imdb_mod, "imdb_path", lambda **kw: archive)
    assert reviews.resolve_source("auto", verbose=False) == "vader"   # nothing cached yet
    (data_home / "downloads").mkdir(parents=True, exist_ok=True)
    (data_home / "downloads" / "aclImdb_v1.tar.gz").write_bytes(archive.read_bytes())
    assert reviews.resolve_source("auto", verbose=False) == "imdb"
    train = reviews.load_reviews("train", source="auto", verbose=False)
    val = reviews.load_reviews("val", source="imdb", verbose=False)
    assert sorted(train + val) == sorted([(1, "Loved it. Truly."), (1, "Great fun, café scenes."),
                                          (0, "Awful.")])  # <br /> cleaned, unsup skipped
    assert sorted(reviews.load_reviews("test", source="imdb", verbose=False)) == [
        (0, "Boring!"), (1, "A classic.")]


# ---------------------------------------------------------------- VADER sentence file
SAMPLE = ("1\t2.26666666667\tThe Rock is destined to be the 21st Century's new ''Conan''.\r\n"
          "2\t-0.6\tEffective but too tepid biopic\r\n"
          "3\t0.4\tThe film opens on Friday.\r\n"
          "4\t-0.5\tExactly on the edge.\r\n"
          "5\t0.5\tJirí Hubac's script is fine.\r\n"
          "6\t-3.875\tA pretentious mess.\r\n"
          "7\t1.0\tA pretentious mess.")


def test_parse_sentence_file_and_label_rule(tmp_path):
    path = tmp_path / "movieReviewSnippets_GroundTruth.txt"
    path.write_bytes(SAMPLE.encode("utf-8"))
    snippets = reviews.read_snippets(path)
    assert [s.id for s in snippets] == [1, 2, 3, 4, 5, 6, 7]
    assert snippets[0].rating == pytest.approx(2.26666666667)
    assert snippets[4].text == "Jirí Hubac's script is fine."      # UTF-8, no trailing \r
    labels = [reviews.rating_to_label(s.rating) for s in snippets]
    assert labels == [1, 0, None, 0, 1, 0, 1]                       # |mean| < 0.5 dropped
    assert reviews.rating_to_label(0.9, neutral_band=1.0) is None
    summary = reviews.label_summary(path)
    assert "7 rated sentences, 1 duplicates removed" in summary
    # the duplicate (id 7) is dropped, its first copy (id 6, negative) kept
    assert "2 positive" in summary and "3 negative" in summary and "1 near-neutral" in summary
    with pytest.raises(ValueError, match="line 1"):
        reviews.parse_snippets("not a tab separated line")


def test_split_is_deterministic_by_seed_without_overlap():
    items = [reviews.Snippet(i, 1.0, f"s{i}") for i in range(1000)]
    a, b = reviews.split_snippets(items, seed=0), reviews.split_snippets(items[::-1], seed=0)
    assert {k: [s.id for s in v] for k, v in a.items()} == {k: [s.id for s in v] for k, v in b.items()}
    assert [len(a[k]) for k in reviews.SPLITS] == [800, 100, 100]
    ids = [set(s.id for s in a[k]) for k in reviews.SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(range(1000))
    other = reviews.split_snippets(items, seed=1)
    assert {s.id for s in other["test"]} != ids[2]


def test_missing_data_says_how_to_prepare(data_home, monkeypatch):
    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    assert not reviews.is_prepared()
    with pytest.raises(reviews.ReviewsNotPrepared, match="course data prepare"):
        reviews.load_reviews("train", source="vader")


def test_truncated_data_is_reported_as_failing_its_checksum(data_home, monkeypatch):
    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    path = reviews.snippets_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("1\t2.0\tA truncated fi")          # the file is there, but cut short
    with pytest.raises(reviews.ReviewsNotPrepared) as info:
        reviews.load_reviews("train", source="vader")
    message = str(info.value)
    assert "fails its checksum" in message and "course data prepare" in message
    assert "not in the data cache" not in message


def test_prepare_rejects_a_wrong_sdist(data_home, tmp_path):
    fake = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    fake.write_bytes(_tar_gz({"x.txt": "not vader"}))
    with pytest.raises(reviews.ReviewsNotPrepared, match="SHA-256"):
        reviews.prepare(sdist=fake, quiet=True)
    assert not reviews.snippets_path().exists()


# ---------------------------------------------------------------- the real prepared data
@pytest.fixture(scope="module")
def real_downloads():
    """The real download cache, captured before any test points COURSE_DATA elsewhere."""
    from course_utils.data.cache import downloads_dir

    return downloads_dir()


@pytest.fixture(scope="module")
def real_snippets():
    if not reviews.is_prepared():
        pytest.skip("offline review data not prepared: run `course data prepare`")
    return reviews.read_snippets()


def test_real_vader_data(real_snippets):
    assert len(real_snippets) == reviews.N_SNIPPETS == 10605
    assert real_snippets[0].text.startswith("The Rock is destined")
    assert all(-4 <= s.rating <= 4 for s in real_snippets)
    splits = {k: reviews.load_reviews(k, source="vader", verbose=False) for k in reviews.SPLITS}
    sizes = {k: len(v) for k, v in splits.items()}
    assert sum(sizes.values()) == 4995 + 5075
    assert 7900 < sizes["train"] < 8200 and 950 < sizes["val"] < 1100 and 950 < sizes["test"] < 1100
    texts = {k: {t for _, t in v} for k, v in splits.items()}
    assert not (texts["train"] & texts["test"] or texts["train"] & texts["val"]
                or texts["val"] & texts["test"])
    assert splits["train"] == reviews.load_reviews("train", source="vader", seed=0, verbose=False)
    positives = sum(label for label, _ in splits["train"]) / sizes["train"]
    assert 0.45 < positives < 0.55


def test_prepare_from_the_cached_sdist_offline(real_snippets, real_downloads, data_home):
    # `course data prepare` kept the sdist in the real cache; re-preparing from it needs no network
    sdist = real_downloads / reviews.SDIST
    if not sdist.is_file():
        pytest.skip("the vadersentiment sdist is not in the download cache")
    path = reviews.prepare(sdist=sdist, quiet=True)
    assert path == data_home / "reviews" / reviews.FILE_NAME
    assert hashlib.sha256(path.read_bytes()).hexdigest() == reviews.FILE_SHA256
    assert reviews.prepare(quiet=True) == path                    # idempotent
    assert (data_home / "downloads" / reviews.SDIST).is_file()    # kept for offline re-prepare


# ---------------------------------------------------------------- the VADER lexicon (lesson 06, X6)
def test_parse_lexicon_keeps_the_first_rating_and_rejects_bad_lines():
    text = ("good\t1.9\t0.9\t[2, 1, 2]\n"
            ":)\t2.0\t1.2\t[3, 1]\n"
            "\n"
            "ok\t1.2\t0.4\t[1, 1]\n"
            "ok\t0.9\t0.5\t[1, 0]\n"         # listed twice, as in the real file: the first line counts
            "bad\t-2.5\t0.7\t[-3, -2]\n")
    assert reviews.parse_lexicon(text) == {"good": 1.9, ":)": 2.0, "ok": 1.2, "bad": -2.5}
    with pytest.raises(ValueError, match="lexicon line 1"):
        reviews.parse_lexicon("no tab here\n")


def test_lexicon_from_a_wrong_sdist_is_rejected(data_home, tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(_tar_gz({reviews.LEXICON_MEMBER: "good\t3.0\t0.0\t[3]\n"}))  # right name, wrong bytes
    with pytest.raises(reviews.ReviewsNotPrepared, match="SHA-256"):
        reviews.extract_lexicon(fake)
    with pytest.raises(reviews.ReviewsNotPrepared, match="SHA-256"):
        reviews.prepare_lexicon(sdist=fake, quiet=True)       # the sdist's own checksum fails first
    assert not reviews.lexicon_path().exists()
    with pytest.raises(reviews.ReviewsNotPrepared, match="course data prepare"):
        reviews.load_lexicon()                                # nothing cached, no downloads allowed


def test_real_lexicon_from_the_cached_sdist_offline(real_downloads, data_home, monkeypatch):
    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    sdist = real_downloads / reviews.SDIST
    if not sdist.is_file():
        pytest.skip("the vadersentiment sdist is not in the download cache")
    path = reviews.prepare_lexicon(sdist=sdist, quiet=True)
    assert path == data_home / "reviews" / reviews.LEXICON_FILE
    assert hashlib.sha256(path.read_bytes()).hexdigest() == reviews.LEXICON_SHA256
    assert reviews.prepare_lexicon(quiet=True) == path              # idempotent
    lex = reviews.load_lexicon()
    assert len(lex) == reviews.N_LEXICON == 7506
    assert all(-4 <= v <= 4 for v in lex.values())
    assert lex["good"] > 1 and lex["masterpiece"] > 2 and lex["bad"] < -1 and lex["boring"] < -1
    assert "imax" not in lex and "the" not in lex                   # names and stop words are not rated
    # load_lexicon alone extracts from the cached sdist (what the lesson does after `course data prepare`)
    path.unlink()
    assert reviews.load_lexicon() == lex and reviews.lexicon_is_prepared()
