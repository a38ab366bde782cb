"""pair-classif, the sentence-pair task: records, pair tokenisation, segment ids, padding and data validation.

Tokenizers are real (the embedded MiniLM's and the tiny models'); data files are written to a temporary folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.batching import pad
from tasks.encode import encode
from tasks.errors import RecordError, SpecError
from tasks.fields import Record
from tasks.kinds import check_spec
from tasks.records import make_record
from tasks.spec import TaskSpec
from tests.helpers.fixtures_tokenizers import inputs_of, minilm, tiny_model_path, tokenizers  # noqa: F401 -- pytest fixtures
from training.data import DataError, load_dataset

TASK = "pair-classif"
LABELS = ("contradiction", "entailment", "neutral")
HEADER = "text\ttext_pair\tlabels\n"
OK = HEADER + "the team won\tfans celebrated\tentailment\nthe team won\tthe team lost\tcontradiction\n"


def _spec(model_type: str = "bert", **kwargs) -> TaskSpec:
    return TaskSpec(task=TASK, model_type=model_type, labels=LABELS, **kwargs)


def _error(*args, **kwargs) -> RecordError:
    with pytest.raises(RecordError) as info:
        make_record(*args, **kwargs)
    return info.value


# ---- records -----------------------------------------------------------------------------------------------------

def test_a_pair_record_carries_both_texts_and_a_classif_label():
    record = make_record(TASK, False, {"text": "the team won", "text_pair": "fans celebrated"}, '"entailment"')
    assert record == Record(text="the team won", label="entailment", text_pair="fans celebrated")
    assert record.inputs() == {"text": "the team won", "text_pair": "fans celebrated"}


@pytest.mark.parametrize("fields, message", [
    ({"text": "a"}, "text_pair is missing"),
    ({"text": "a", "text_pair": ""}, "text_pair is empty"),
    ({"text": "a", "text_pair": " \t"}, "text_pair is empty"),
    ({"text": "a", "text_pair": 3}, "text_pair must be a string, got int"),
    ({"text_pair": "b"}, "text is missing"),  # text is checked first, like every task
])
def test_both_texts_are_required(fields, message):
    err = _error(TASK, False, fields)
    assert (err.field, err.message) == (message.split()[0], message)


def test_pair_labels_are_parsed_like_classif():
    assert _error(TASK, False, {"text": "a", "text_pair": "b"}, '""').message == "empty label; expected one class name"


def test_the_pair_task_reads_no_boxes():
    with pytest.raises(SpecError, match="task 'pair-classif' reads no word boxes"):
        check_spec(TaskSpec(task=TASK, model_type="layoutlm", labels=LABELS, use_bbox=True))


# ---- encoding ----------------------------------------------------------------------------------------------------

def test_a_pair_is_one_sequence_with_segment_ids(minilm):
    record = make_record(TASK, False, {"text": "Alice joined", "text_pair": "Hooli"}, "neutral")
    [f] = encode(_spec(), minilm, [record], with_labels=True)
    assert minilm.convert_ids_to_tokens(f.input_ids) == ["[CLS]", "alice", "joined", "[SEP]", "ho", "##oli", "[SEP]"]
    assert f.token_type_ids == [0, 0, 0, 0, 1, 1, 1]
    assert (f.record, f.labels, f.first_of_word) == (0, LABELS.index("neutral"), [])


def test_a_long_pair_is_cut_longest_first_so_the_second_text_keeps_its_tokens(minilm):
    long_text = " ".join(["the"] * 40)
    record = make_record(TASK, False, {"text": long_text, "text_pair": "Alice joined"})
    [f] = encode(_spec(max_seq_length=12, stride=0), minilm, [record])
    tokens = minilm.convert_ids_to_tokens(f.input_ids)
    assert len(f) == 12 and tokens[-3:] == ["alice", "joined", "[SEP]"]
    assert f.token_type_ids == [0] * 9 + [1] * 3


def test_padding_keeps_each_pairs_segment_ids(tokenizers):
    records = [make_record(TASK, False, {"text": "the team", "text_pair": "won"}),
               make_record(TASK, False, {"text": "the", "text_pair": "a"})]
    features = encode(_spec(), tokenizers["bert"], records)
    batch = pad(features, inputs_of("bert"), tokenizers["bert"].pad_token_id)
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1] * 6, [1] * 5 + [0]]


@pytest.mark.parametrize("model_type", ["distilbert", "longformer"])
def test_families_without_segment_ids_get_the_pair_as_one_sequence(tokenizers, model_type):
    tok = tokenizers[model_type]
    [f] = encode(_spec(model_type), tok, [make_record(TASK, False, {"text": "the team", "text_pair": "won"})])
    batch = pad([f], inputs_of(model_type), tok.pad_token_id)
    assert "token_type_ids" not in batch
    assert f.input_ids.count(tok.sep_token_id) >= 2  # the two texts stay apart


def test_the_tiny_bert_runs_on_a_padded_pair_batch(tokenizers):
    import torch
    from transformers import AutoModel

    records = [make_record(TASK, False, {"text": "the team won", "text_pair": "fans"}),
               make_record(TASK, False, {"text": "a", "text_pair": "b"})]
    batch = pad(encode(_spec(), tokenizers["bert"], records), inputs_of("bert"), tokenizers["bert"].pad_token_id)
    model = AutoModel.from_pretrained(str(tiny_model_path("bert"))).eval()
    with torch.inference_mode():
        hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
    assert tuple(hidden.shape[:2]) == batch["input_ids"].shape and np.isfinite(hidden.numpy()).all()


# ---- training files ----------------------------------------------------------------------------------------------

def _folder(tmp_path: Path, train: str = OK, dev: str = OK, test: str = OK) -> Path:
    for name, content in (("train", train), ("dev", dev), ("test", test)):
        (tmp_path / f"{name}.csv").write_text(content, encoding="utf-8")
    return tmp_path


def _problems(folder: Path, **kwargs) -> list[str]:
    with pytest.raises(DataError) as info:
        load_dataset(folder, TASK, **kwargs)
    return [str(p) for p in info.value.problems]


def test_pair_files_load(tmp_path):
    data = load_dataset(_folder(tmp_path), TASK)
    assert data.labels == ("contradiction", "entailment")
    assert data.train[1] == Record(text="the team won", label="contradiction", text_pair="the team lost")


def test_an_empty_or_missing_text_pair_is_named_by_file_line_and_column(tmp_path):
    dev = HEADER + "a\tb\tentailment\nthe team won\t \tentailment\n"
    test = HEADER + "the team won\tentailment\n"
    assert _problems(_folder(tmp_path, dev=dev, test=test)) == [
        "dev.csv, line 3, column text_pair: text_pair is empty",
        "test.csv, line 2: has 2 tab-separated fields, expected 3 (text, text_pair, labels); "
        "is a column missing, or separated by spaces instead of a tab?",
    ]


def test_a_file_without_the_text_pair_column_says_which_columns_are_expected(tmp_path):
    assert _problems(_folder(tmp_path, train="text\tlabels\na\tb\n")) == [
        "train.csv, line 1: missing column(s) ['text_pair']; expected tab-separated columns text, text_pair, labels"]


def test_an_empty_pair_file_names_its_three_columns(tmp_path):
    assert _problems(_folder(tmp_path, test="")) == [
        "test.csv, line 1: is empty; expected a header row with columns text, text_pair and labels"]


def test_boxes_are_refused_for_the_pair_task(tmp_path):
    with pytest.raises(DataError, match="task pair-classif reads no word boxes; train without use_bbox"):
        load_dataset(_folder(tmp_path), TASK, use_bbox=True)


def test_one_class_is_not_enough(tmp_path):
    one = HEADER + "a\tb\tentailment\n"
    assert _problems(_folder(tmp_path, one, one, one)) == [
        "train.csv, column labels: pair-classif needs at least 2 classes, found ['entailment']"]
