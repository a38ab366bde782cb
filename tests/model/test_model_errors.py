"""Models we cannot load or serve: one line naming the model and the reason, a non-zero exit, nothing written.

Each bad folder is a copy of the tiny BERT, broken one way. ``check_model`` (training and ``make archive``) and
the launcher's check of a local folder are called in process for every case; a few cases go through the real
command lines (``python -m training``, ``python -m entrypoints train``, ``python -m archive``,
``python -m launcher train``) as subprocesses, to see the exit status, the one line, the failure file and that
no traceback is shown and no output is left.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from archive.build import RuntimeOptions, build
from launcher.errors import SettingError
from launcher.jobs.model_folder import check_model_name
from runtimes.model_source import NOT_FETCHED, ModelError, check_model
from tasks.model_config import looks_local
from tasks.spec import TASK_SPEC_FILE, TaskSpec
from tests.helpers import ROOT

Break = Callable[[Path], None]


def _edit_config(**changes: object) -> Break:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return edit


def _write(name: str, text: str) -> Break:
    return lambda folder: (folder / name).write_text(text, encoding="utf-8")


def _remove(*names: str) -> Break:
    def remove(folder: Path) -> None:
        for name in names:
            (folder / name).unlink()
    return remove


AUTO_MAP = {"AutoConfig": "configuration_neobert.NeoBERTConfig", "AutoModel": "model.NeoBERT"}
#: name -> (how the folder is broken, the head asked for, what the reason says); the launcher sees the first six
FOLDER_CASES: dict[str, tuple[Break, str, str]] = {
    "no config.json": (_remove("config.json"), "token", "the folder has no config.json"),
    "config.json not JSON": (_write("config.json", "{\"model_type\": "), "token", "config.json is not valid JSON"),
    "no model_type": (_edit_config(model_type=None), "token", "config.json has no model_type"),
    "remote code": (_edit_config(auto_map=AUTO_MAP), "token",
                    "it needs its own Python code (config.json auto_map: AutoConfig: configuration_neobert"),
    "no weights": (_remove("model.safetensors"), "token", "the folder has no weights"),
    "no tokenizer files": (_remove("tokenizer.json", "tokenizer_config.json"), "sequence",
                           "the folder has no tokenizer files"),
}
#: cases only transformers can judge (the launcher passes them on to the job)
MODEL_CASES: dict[str, tuple[Break, str, str]] = {
    "type transformers does not know": (_edit_config(model_type="neobert"), "token",
                                        "model type 'neobert' is not one transformers knows: only the checkpoint's "
                                        "own code could load it, and we never run a checkpoint's own code"),
    "no token head": (_edit_config(model_type="vit"), "token", "vit has no token-classification head in transformers"),
    "no sequence head": (_edit_config(model_type="clip"), "sequence",
                         "clip has no sequence-classification head in transformers"),
    "tokenizer.json corrupt": (_write("tokenizer.json", "{not json"), "token",
                               "its tokenizer will not load: JSONDecodeError: Expecting property name"),
    "tokenizer.json of another shape": (_write("tokenizer.json", "{\"model\": {}}"), "sequence",
                                        "its tokenizer will not load: KeyError:"),
}


@pytest.fixture
def broken(tiny_model_dir, tmp_path) -> Callable[[Break], Path]:
    """``broken(change)`` -> a private copy of the tiny BERT with ``change`` applied."""
    def make(change: Break) -> Path:
        folder = Path(shutil.copytree(tiny_model_dir("bert"), tmp_path / "model"))
        change(folder)
        return folder
    return make


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# -- in process ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [*FOLDER_CASES, *MODEL_CASES])
def test_check_model_names_the_model_and_the_reason(broken, case):
    change, head, reason = {**FOLDER_CASES, **MODEL_CASES}[case]
    folder = broken(change)
    with pytest.raises(ModelError) as info:
        check_model(str(folder), head)
    assert str(info.value).startswith(f"model {str(folder)!r} cannot be used: {reason}")
    assert info.value.model == str(folder) and reason in info.value.reason
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["/no/such/model", "./no-such-model", "../no-such-model", "a/b/c"])
def test_a_local_folder_that_does_not_exist(name):
    with pytest.raises(ModelError) as info:
        check_model(name, "token")
    assert str(info.value) == f"model {name!r} cannot be used: no such folder"


def test_a_file_is_not_a_model_folder(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="it is a file, not a model folder"):
        check_model(str(tmp_path / "model.safetensors"), "token")


@pytest.mark.parametrize("name", ["nobody/no-such-model", "no-such-model-at-all", "not a valid id!"])
def test_a_hub_id_that_cannot_be_fetched(name):
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # conftest: the hub is never asked, nothing is cached for these
    with pytest.raises(ModelError) as info:
        check_model(name, "sequence")
    assert str(info.value) == f"model {name!r} cannot be used: {NOT_FETCHED}"


def test_a_good_folder_passes_with_its_type_and_tokenizer(tiny_model_dir):
    source = check_model(str(tiny_model_dir("bert")), "token")
    assert (source.local, source.model_type) == (True, "bert")
    assert source.tokenizer("alice met bob")["input_ids"]
    # a type with only a sequence head is refused for NER and accepted for classification
    assert check_model(str(tiny_model_dir("bert")), "sequence").model_type == "bert"


def test_a_hub_shaped_name_is_local_only_when_it_exists():
    assert not looks_local("google/electra-small-discriminator", exists=False)
    assert looks_local("google/electra-small-discriminator", exists=True)
    assert all(looks_local(name, exists=False) for name in ("/abs", "./rel", "../up", "~/home", "a/b/c"))


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_the_launcher_refuses_a_broken_local_folder_with_the_flag_named(broken, case):
    change, _, reason = FOLDER_CASES[case]
    folder = broken(change)
    with pytest.raises(SettingError) as info:
        check_model_name(str(folder))
    assert info.value.exit_status == 2
    assert str(info.value).startswith(f"--model-name: model {str(folder)!r} cannot be used: {reason}")


def test_the_launcher_passes_hub_ids_the_default_and_good_folders(tiny_model_dir):
    for name in (None, "", "embedded:all-MiniLM-L6-v2", "nobody/no-such-model", str(tiny_model_dir("bert"))):
        check_model_name(name)  # the job fetches and checks a hub id; nothing here may refuse it
    with pytest.raises(SettingError, match="no such folder"):
        check_model_name("./no-such-model")


def _checkpoint(tiny: Path, dst: Path) -> Path:
    """A classif checkpoint as training writes it (untrained head): what ``make archive`` takes."""
    from transformers import AutoModelForSequenceClassification

    shutil.copytree(tiny, dst)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny), num_labels=2, id2label={0: "a", 1: "b"},
                                                               label2id={"a": 0, "b": 1})
    model.save_pretrained(str(dst))
    spec = TaskSpec(task="classif", model_type="bert", labels=("a", "b"), max_seq_length=32, stride=8)
    (dst / TASK_SPEC_FILE).write_text(json.dumps(spec.to_dict()), encoding="utf-8")
    return dst


@pytest.mark.parametrize("change, reason", [(_edit_config(auto_map=AUTO_MAP), "it needs its own Python code"),
                                            (_write("tokenizer.json", "{not json"), "its tokenizer will not load")])
def test_build_refuses_a_checkpoint_transformers_cannot_load_and_writes_nothing(tiny_model_dir, tmp_path, change,
                                                                                reason):
    checkpoint = _checkpoint(tiny_model_dir("bert"), tmp_path / "ckpt")
    change(checkpoint)
    with pytest.raises(ModelError, match=reason):
        build(checkpoint, tmp_path / "out", runtime=RuntimeOptions(runtime="torch"))
    assert not (tmp_path / "out").exists()


def _sentencepiece_only(tiny: Path, dst: Path) -> Path:
    """A DeBERTa-v2 folder whose only tokenizer file is ``spm.model``, as DeBERTa-v3 checkpoints ship."""
    import io

    import sentencepiece

    from tests.helpers.tiny_models import WORDS

    shutil.copytree(tiny, dst)
    _remove("tokenizer.json", "tokenizer_config.json")(dst)
    _edit_config(model_type="deberta-v2")(dst)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter([" ".join(WORDS)] * 20 + WORDS),
                                             model_writer=model, vocab_size=120, model_type="unigram", pad_id=0,
                                             unk_id=1, bos_id=2, eos_id=3, minloglevel=2)
    (dst / "spm.model").write_bytes(model.getvalue())
    return dst


def test_an_spm_model_only_folder_loads_with_sentencepiece_and_is_refused_by_name_without(tiny_model_dir, tmp_path):
    folder = _sentencepiece_only(tiny_model_dir("bert"), tmp_path / "deberta")
    assert check_model(str(folder), "token").tokenizer("alice met bob")["input_ids"]
    # without the converters transformers falls back to other readers and blames them ("tiktoken is required")
    code = ("import sys; sys.modules['sentencepiece'] = sys.modules['google.protobuf'] = None\n"
            "from runtimes.model_source import ModelError, check_model\n"
            f"try:\n    check_model({str(folder)!r}, 'token')\nexcept ModelError as exc:\n    print(exc)")
    run = _run("-c", code)
    assert _one_line(run.stdout) == (f"model {str(folder)!r} cannot be used: its tokenizer will not load: spm.model is "
                                     "a SentencePiece model; converting it needs sentencepiece and protobuf "
                                     "(pip install -r requirements.txt)"), run.stderr


# -- through the command lines ------------------------------------------------------------------------------------
def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT, env=child, timeout=300,
                          check=False)


def test_python_dash_m_training_says_one_line_and_leaves_no_output(broken, small_data, tmp_path):
    change, _, reason = MODEL_CASES["no token head"]
    folder, out = broken(change), tmp_path / "out" / "checkpoint"
    run = _run("-m", "training", "--data", str(small_data("ner")), "--out", str(out), "task_name=ner",
               f"model_name={folder}", "max_steps=1")
    assert run.returncode == 2
    assert _one_line(run.stderr) == f"error: model {str(folder)!r} cannot be used: {reason}"
    assert "Traceback" not in run.stdout + run.stderr
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_the_train_entrypoint_writes_the_line_to_the_failure_file(broken, small_data, tmp_path):
    from tests.helpers.opt_ml import make_opt_ml

    change, _, reason = FOLDER_CASES["remote code"]
    folder = broken(change)
    base = make_opt_ml(tmp_path / "ml", small_data("classif"), {"task_name": "classif", "model_name": str(folder)})
    run = _run("-m", "entrypoints", "train", env={"SAGEMAKER_BASE_DIR": str(base)})
    assert run.returncode == 1
    line = (base / "output" / "failure").read_text(encoding="utf-8")
    assert _one_line(line).startswith(f"model {str(folder)!r} cannot be used: {reason}") and line.endswith("\n")
    assert "Traceback" not in run.stdout + run.stderr
    assert list((base / "model").iterdir()) == []


def test_make_archive_says_one_line_and_writes_nothing(tiny_model_dir, tmp_path):
    checkpoint = _checkpoint(tiny_model_dir("bert"), tmp_path / "ckpt")
    (checkpoint / "tokenizer.json").write_text("{not json", encoding="utf-8")
    run = _run("-m", "archive", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--runtime", "torch")
    assert run.returncode == 2
    assert _one_line(run.stderr).startswith(f"error: model {str(checkpoint)!r} cannot be used: its tokenizer will "
                                            "not load: JSONDecodeError")
    assert "Traceback" not in run.stdout + run.stderr
    assert not (tmp_path / "out").exists()


def test_the_launcher_refuses_a_local_folder_before_anything_is_uploaded(broken, tmp_path):
    change, _, reason = FOLDER_CASES["no config.json"]
    folder = broken(change)
    # no AWS endpoint answers: the check must come before any call (an upload would fail otherwise, not exit 2)
    env = {"SMTX_S3_PREFIX": "s3://smtx-no-bucket/p", "SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/R",
           "SMTX_TRAINING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-train:1",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_CONFIG_FILE": str(tmp_path / "no-config")}
    data = ROOT / "examples" / "data" / "ner"
    run = _run("-m", "launcher", "train", "--data", str(data), "--task", "ner", "--model-name", str(folder),
               "--instance-type", "ml.m5.xlarge", env=env)
    assert run.returncode == 2
    assert _one_line(run.stderr).startswith(f"error: --model-name: model {str(folder)!r} cannot be used: {reason}")
    assert "Traceback" not in run.stdout + run.stderr
