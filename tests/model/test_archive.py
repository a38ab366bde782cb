"""What may be archived and what the archives hold: checkpoint checks, ``<name>.mar`` and ``model.tar.gz``."""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from archive.build import CODE_PACKAGES, ArchiveSettings, RuntimeOptions, build, safe_name
from handlers.service import InferenceService, Request
from runtimes.checkpoint import CheckpointError, check_checkpoint
from runtimes.torch_runtime import read_spec
from tasks.serving_manifest import SCHEMA_VERSION, ServingManifest
from tests.helpers import ROOT
from tests.helpers.handler_fixtures import trained  # noqa: F401 -- pytest fixtures

#: torch serving, no ONNX export: what is archived here is the layout (the ONNX choice has its own tests)
TORCH = RuntimeOptions(runtime="torch")
TORCH_SERVING = ServingManifest(runtime="torch", reason="runtime 'torch' was asked for (--runtime torch)")
LABELS = ["business", "health", "sports", "technology"]  # examples/data/classif, in the order training sorts them
TASKS = "['ner', 'classif', 'multilabel-classif', 'regression', 'pair-classif']"


@pytest.fixture(scope="module")
def classif(trained):
    return trained("classif")


@pytest.fixture
def copy(classif, tmp_path):
    """A private copy of the trained checkpoint, to break."""
    return Path(shutil.copytree(classif, tmp_path / "ckpt"))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def refusal(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(path)
    return str(info.value)


# -- check_checkpoint ---------------------------------------------------------------------------------------------
def test_a_trained_checkpoint_passes(classif, trained):
    spec = check_checkpoint(classif)
    assert spec == read_spec(classif)
    assert (spec.task, spec.model_type, list(spec.labels)) == ("classif", "bert", LABELS)
    assert check_checkpoint(str(trained("ner"))).task == "ner"


@pytest.mark.parametrize("name", ["pytorch_model.bin", "report/optimizer.pt", "weights.PTH", "x.ckpt"])
def test_pickled_weights_are_refused_by_name(copy, name):
    (copy / name).write_bytes(b"\x80\x04not really a pickle")
    assert refusal(copy) == (f"checkpoint {copy} holds pickled weights [{Path(name).name!r}]; only safetensors are "
                             "accepted (re-save with save_pretrained, which writes model.safetensors)")


def test_pickled_weights_instead_of_safetensors_are_refused_as_pickled(copy):
    (copy / "model.safetensors").rename(copy / "pytorch_model.bin")
    (copy / "training_args.bin").write_bytes(b"")
    assert refusal(copy) == (f"checkpoint {copy} holds pickled weights ['pytorch_model.bin', 'training_args.bin']; "
                             "only safetensors are accepted (re-save with save_pretrained, which writes "
                             "model.safetensors)")


def test_no_safetensors_weights(copy):
    (copy / "model.safetensors").unlink()
    assert refusal(copy) == f"checkpoint {copy} has no .safetensors weights"


def test_a_spec_whose_model_type_is_not_the_configs_is_refused(copy):
    edit_json(copy / "task_spec.json", lambda s: s.update(model_type="gpt2"))
    assert refusal(copy) == "config.json model_type 'bert' differs from the task spec's 'gpt2'"


def test_missing_task_spec(copy):
    (copy / "task_spec.json").unlink()
    assert refusal(copy) == f"checkpoint {copy} has no task_spec.json; was it written by our training?"


@pytest.mark.parametrize("change,problem", [
    (lambda s: s.update(task="bogus"), f"task 'bogus' is not one of {TASKS}"),
    (lambda s: s.update(schema_version=3), "task spec schema_version 3 is not supported (this code reads 1 and 2)"),
    (lambda s: s.pop("model_type"), "task spec is missing ['model_type']"),
    (lambda s: s.update(labels=["a", "a"]), "labels must be unique"),
    (lambda s: s.update(colour="red"), "task spec has unknown fields ['colour']"),
    (lambda s: s.update(model_inputs=["input_ids", "attention_mask", "pixel_values"]),
     "model_inputs ['input_ids', 'attention_mask', 'pixel_values'] are not valid: expected input_ids, "
     "attention_mask, then any of ['token_type_ids', 'bbox', 'global_attention_mask']"),
])
def test_an_invalid_task_spec_is_refused_saying_why(copy, change, problem):
    edit_json(copy / "task_spec.json", change)
    assert refusal(copy) == f"{copy / 'task_spec.json'} is not valid: {problem}"


def test_a_task_spec_that_is_not_json(copy):
    (copy / "task_spec.json").write_text("{task: ner", encoding="utf-8")
    assert refusal(copy) == (f"{copy / 'task_spec.json'} is not valid: Expecting property name enclosed in double "
                             "quotes: line 1 column 2 (char 1)")


def test_id2label_that_differs_from_the_spec_labels(copy):
    edit_json(copy / "config.json", lambda c: c.update(id2label={"0": "health", "1": "business", "2": "sports",
                                                                 "3": "technology"}))
    assert refusal(copy) == ("config.json id2label {'0': 'health', '1': 'business', '2': 'sports', '3': 'technology'} "
                             f"does not match the task spec labels {LABELS}")


def test_a_head_with_fewer_outputs_than_labels(copy):
    edit_json(copy / "config.json", lambda c: c.update(id2label={"0": "business", "1": "health", "2": "sports"}))
    assert refusal(copy) == f"the model head has 3 outputs but the task spec needs 4 ({copy})"


def test_a_spec_with_more_labels_than_the_head(copy):
    edit_json(copy / "task_spec.json", lambda s: s.update(labels=[*LABELS, "weather"]))
    assert refusal(copy) == f"the model head has 4 outputs but the task spec needs 5 ({copy})"


def test_a_model_type_that_differs_from_the_spec(copy):
    edit_json(copy / "task_spec.json", lambda s: s.update(model_type="distilbert"))
    assert refusal(copy) == "config.json model_type 'bert' differs from the task spec's 'distilbert'"


def test_missing_config(copy):
    (copy / "config.json").unlink()
    assert refusal(copy) == (f"checkpoint {copy} has no readable config.json: [Errno 2] No such file or directory: "
                             f"'{copy / 'config.json'}'")


def test_no_tokenizer_files(copy):
    (copy / "tokenizer.json").unlink()
    assert (copy / "tokenizer_config.json").is_file()  # a config alone cannot tokenize
    assert refusal(copy) == f"checkpoint {copy} has no tokenizer files (tokenizer.json)"


def test_not_a_directory(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"")
    assert refusal(tmp_path / "model.tar.gz") == f"checkpoint {tmp_path / 'model.tar.gz'} is not a directory"
    assert refusal(tmp_path / "absent") == f"checkpoint {tmp_path / 'absent'} is not a directory"


# -- build --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(classif, tmp_path_factory):
    out = tmp_path_factory.mktemp("archives") / "out"
    return build(classif, out, name="Tiny classif v1!", settings=ArchiveSettings(batch_size=4, max_batch_delay_ms=2),
                 runtime=TORCH)


def without_gpu(serving: ServingManifest) -> ServingManifest:
    """serving.json less its ``gpu`` entry (tests/model/test_gpu_check_set.py checks that one)."""
    return replace(serving, gpu=None)


def zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}


def tar_files(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def test_build_writes_both_archives_and_nothing_else(built):
    out = built.mar.parent
    assert built.mar == out / "Tiny-classif-v1.mar" and built.tarball == out / "model.tar.gz"
    assert built.runtime == "torch" and without_gpu(built.serving) == TORCH_SERVING
    assert sorted(p.name for p in out.iterdir()) == ["Tiny-classif-v1.mar", "model.tar.gz"]


def test_the_mar_holds_manifest_config_code_and_serving_files(built, classif):
    files = zip_files(built.mar)
    manifest = json.loads(files["MAR-INF/MANIFEST.json"])
    assert manifest["model"] == {"modelName": "Tiny-classif-v1", "handler": "ts_handler.py", "modelVersion": "1.0",
                                 "configFile": "model-config.yaml"}
    assert files["model-config.yaml"].decode() == ("batchSize: 4\nmaxBatchDelay: 2\nresponseTimeout: 120\n"
                                                   "startupTimeout: 300\n")
    written = json.loads(files["serving.json"])
    assert written["schema_version"] == SCHEMA_VERSION
    assert without_gpu(ServingManifest.from_dict(written)) == TORCH_SERVING
    assert not any(n.endswith(".onnx") for n in files)
    assert files["ts_handler.py"] == (ROOT / "handlers" / "ts_handler.py").read_bytes()
    for package in ("tasks", "runtimes", "handlers"):
        sources = {f"{package}/{p.relative_to(ROOT / package).as_posix()}": p.read_bytes()
                   for p in (ROOT / package).rglob("*.py")}  # subpackages too (tasks/kinds/)
        assert "__init__.py" in {Path(n).name for n in sources}
        assert {n: b for n, b in files.items() if n.startswith(f"{package}/")} == sources
    # only the packages serving imports: the archive-building code stays out
    assert {n.split("/")[0] for n in files if n.endswith(".py") and "/" in n} == {"tasks", "runtimes", "handlers"}
    for name in ("config.json", "task_spec.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors",
                 "README.md", "metrics.json"):
        assert files[name] == (classif / name).read_bytes(), name
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in files)
    # training-side outputs stay with the training output
    assert not {"test_predictions.jsonl", "trainer_log.json"} & set(files)
    assert not any(n.startswith("report/") for n in files)


def test_the_tarball_holds_the_same_files_with_the_same_bytes(built):
    mar, tarball = zip_files(built.mar), tar_files(built.tarball)
    assert sorted(tarball) == sorted(mar)
    assert {n: hashlib.sha256(b).hexdigest() for n, b in tarball.items()} == \
           {n: hashlib.sha256(b).hexdigest() for n, b in mar.items()}
    with tarfile.open(built.tarball, "r:gz") as tf:
        assert all(not m.name.startswith(("/", "./", "..")) for m in tf.getmembers())


def test_the_extracted_tarball_serves_what_the_checkpoint_serves(built, classif, tmp_path):
    with tarfile.open(built.tarball, "r:gz") as tf:
        tf.extractall(tmp_path, filter="data")
    assert check_checkpoint(tmp_path) == check_checkpoint(classif)
    body = b'{"data": [{"text": "the team won the final match"}, {"text": "sales grew"}]}'
    answers = [InferenceService(path).handle([Request(body, {"content-type": "application/json"})])[0]
               for path in (tmp_path, classif)]
    assert answers[0].status == answers[1].status == 200
    assert answers[0].body == answers[1].body


#: run in a fresh interpreter from the extracted archive: load the model as a worker does, answer one request,
#: and say which of our packages were imported and from where
WORKER_LOAD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from handlers.service import InferenceService, Request
request = Request(b'{"text": "sales grew"}', {"content-type": "application/json"})
answer = InferenceService(sys.argv[1]).handle([request])[0]
ours = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()
        if name.split(".")[0] in ("tasks", "runtimes", "handlers", "archive", "training", "entrypoints")}
print(json.dumps({"status": answer.status, "modules": ours}))
"""


def test_a_worker_loads_the_archive_with_its_own_code_and_without_the_archive_package(built, tmp_path):
    with tarfile.open(built.tarball, "r:gz") as tf:
        tf.extractall(tmp_path / "model", filter="data")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", WORKER_LOAD, str(tmp_path / "model")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert {name.split(".")[0] for name in result["modules"]} == {"tasks", "runtimes", "handlers"}
    assert all(Path(file).is_relative_to(tmp_path / "model") for file in result["modules"].values() if file)


def test_the_packages_an_archive_carries_never_import_the_archive_package():
    """Static, so that a lazy import on a path no test takes is caught too."""
    offenders = []
    for package in CODE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "archive"]
    assert offenders == []


def test_build_refuses_a_bad_checkpoint_and_writes_nothing(copy, tmp_path):
    (copy / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        build(copy, tmp_path / "out", runtime=TORCH)
    assert "holds pickled weights ['pytorch_model.bin']" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_build_names_the_archive_after_the_checkpoint_by_default(copy, tmp_path):
    built = build(copy, tmp_path / "out", runtime=TORCH)
    assert built.mar == tmp_path / "out" / "ckpt.mar"
    files = zip_files(built.mar)
    assert json.loads(files["MAR-INF/MANIFEST.json"])["model"]["modelName"] == "ckpt"
    assert files["model-config.yaml"].decode().startswith("batchSize: 8\n")


@pytest.mark.parametrize("name,expected", [
    ("my model!", "my-model"), ("ok_name-1", "ok_name-1"), ("a/b c", "a-b-c"), ("--x--", "x"),
    ("mod\u00e8le", "mod-le"), ("ner.v2", "ner-v2"), ("../../etc", "etc"),
])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["", "!!!", "\u00e9\u00e8", " - "])
def test_safe_name_refuses_a_name_with_nothing_usable(name):
    with pytest.raises(ValueError) as info:
        safe_name(name)
    assert str(info.value) == f"model name {name!r} has no usable characters (letters, digits, _ and -)"


@pytest.mark.parametrize("field,value", [("batch_size", 0), ("response_timeout_s", -1), ("max_batch_delay_ms", -1),
                                         ("startup_timeout_s", 2.5)])
def test_archive_settings_are_validated(field, value):
    with pytest.raises(ValueError) as info:
        ArchiveSettings(**{field: value})
    assert str(info.value) == f"{field}={value!r} is not valid; expected a positive integer"


def test_a_batch_delay_of_0_is_refused_saying_what_torchserve_would_do():
    with pytest.raises(ValueError) as info:
        ArchiveSettings(max_batch_delay_ms=0)
    assert str(info.value) == ("max_batch_delay_ms=0 is not valid; expected a positive integer (TorchServe 0.12 reads "
                               "0 as unset and waits its 100 ms default: 1 is the smallest delay)")
