"""Security: what the stack refuses to load, extract or expose, and what a static scan finds in our code.

- Weights: only safetensors. A pickled ``pytorch_model.bin`` is a canary here -- unpickling it creates a file --
  so every test can prove it was never unpickled, whatever else happened.
- Archives: every tar/zip extraction in the repository uses a safe filter, and a malicious ``model.tar.gz``
  (absolute path, ``..``, links leaving the archive, a device node) is refused where training packages the model.
- Multi-model: ``POST /models`` loads only from under the models root (no outside path, no ``..``, no symlink out,
  no http:// or file:// URL elsewhere); in single-model mode no route loads or unloads a model.
- bandit over our code: no finding of medium or high severity beyond the ones reported and explained.
"""
from __future__ import annotations

import ast
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.serving_fixtures import free_port, http, post_json

pytestmark = pytest.mark.slow
CODE_DIRS = ("tasks", "runtimes", "training", "handlers", "archive", "entrypoints", "launcher")
BANDIT = Path(sys.executable).parent / "bandit"


class Canary:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def plant_pickle(folder: Path, canary: Path, name: str = "pytorch_model.bin") -> Path:
    (folder / name).write_bytes(pickle.dumps(Canary(canary)))
    return folder / name


def untrained_checkpoint(folder: Path, base: Path) -> Path:
    """A self-describing classif checkpoint of the tiny BERT with an untrained head (no training needed)."""
    from runtimes.torch_runtime import load_tokenizer, model_class
    from tasks.spec import TASK_SPEC_FILE, TaskSpec

    labels = ("business", "sports")
    model = model_class("classif").from_pretrained(str(base), num_labels=2, id2label=dict(enumerate(labels)),
                                                   label2id={n: i for i, n in enumerate(labels)},
                                                   problem_type="single_label_classification")
    model.save_pretrained(str(folder))
    load_tokenizer(base, "bert").save_pretrained(str(folder))
    spec = TaskSpec(task="classif", model_type="bert", labels=labels, max_seq_length=32, stride=8)
    (folder / TASK_SPEC_FILE).write_text(json.dumps(spec.to_dict()), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def archive(tmp_path_factory, tiny_model_dir):
    """An extracted ``model.tar.gz`` of a tiny classif model, as SageMaker lays it out."""
    from archive.build import build

    root = tmp_path_factory.mktemp("security")
    checkpoint = untrained_checkpoint(root / "checkpoint", tiny_model_dir("bert"))
    built = build(checkpoint, root / "store", name="model")
    extracted = root / "extracted"
    with tarfile.open(built.tarball) as tf:
        tf.extractall(extracted, filter="data")
    return {"checkpoint": checkpoint, "extracted": extracted, "root": root}


# -- weights ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "model.ckpt", "sub/extra.pkl"])
def test_archive_checks_refuse_pickled_weights_without_loading_them(archive, tmp_path, name):
    from archive.checks import CheckpointError, check_checkpoint

    checkpoint = shutil.copytree(archive["checkpoint"], tmp_path / "ckpt")
    (checkpoint / name).parent.mkdir(parents=True, exist_ok=True)
    plant_pickle(checkpoint / Path(name).parent, tmp_path / "canary", Path(name).name)
    with pytest.raises(CheckpointError, match="pickled weights"):
        check_checkpoint(checkpoint)
    assert not (tmp_path / "canary").exists()


def test_make_archive_refuses_pickled_weights(archive, tmp_path):
    checkpoint = shutil.copytree(archive["checkpoint"], tmp_path / "ckpt")
    plant_pickle(checkpoint, tmp_path / "canary")
    proc = subprocess.run([sys.executable, "-m", "archive", "--checkpoint", str(checkpoint), "--out",
                           str(tmp_path / "out"), "--runtime", "torch"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "pickled weights" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "canary").exists()


def test_single_model_serve_refuses_an_archive_with_pickled_weights(archive, tmp_path):
    base = tmp_path / "ml"
    shutil.copytree(archive["extracted"], base / "model")
    plant_pickle(base / "model", tmp_path / "canary")
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(free_port()),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "entrypoints", "serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "pickled weights" in proc.stdout + proc.stderr
    assert not (tmp_path / "canary").exists()


def test_no_code_loads_pickles_or_remote_code():
    """Static: no torch.load / pickle.load(s) / trust_remote_code=True; every from_pretrained of a served
    checkpoint asks for safetensors."""
    offenders = []
    for path in _python_files(CODE_DIRS):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name in ("torch.load", "pickle.load", "pickle.loads", "joblib.load", "dill.load"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
            for kw in node.keywords:
                if kw.arg == "trust_remote_code" and not (isinstance(kw.value, ast.Constant) and not kw.value.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} trust_remote_code")
    assert offenders == []
    runtime = (ROOT / "runtimes" / "torch_runtime.py").read_text(encoding="utf-8")
    assert "use_safetensors=True" in runtime


# -- archive extraction ----------------------------------------------------------------------------------------------
def _python_files(dirs) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def _call_name(node: ast.Call) -> str:
    parts, target = [], node.func
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if isinstance(target, ast.Name):
        parts.append(target.id)
    return ".".join(reversed(parts))


def test_every_extraction_in_the_repository_is_safe():
    """Archives are extracted through archive.checks.safe_extract (which vets every member itself) or with
    tarfile's filter="data"; zipfile's extractall has no filter at all and must not be used on archives."""
    found, unsafe = [], []
    for path in _python_files((*CODE_DIRS, "tests", "bench", "examples")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        vetted = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "safe_extract"
                  for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("extractall", "extract", "unpack_archive"):
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.append(where)
                filters = [kw.value for kw in node.keywords if kw.arg == "filter"]
                data_filter = filters and isinstance(filters[0], ast.Constant) and filters[0].value == "data"
                if not (data_filter or id(node) in vetted):
                    unsafe.append(where)
    assert found, "the scan found no extraction at all: it is looking in the wrong place"
    assert unsafe == []


def _member(tf: tarfile.TarFile, name: str, data: bytes = b"x", **attrs) -> None:
    info = tarfile.TarInfo(name)
    for key, value in attrs.items():
        setattr(info, key, value)
    info.size = len(data) if info.type == tarfile.REGTYPE else 0
    tf.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)


def _malicious(path: Path, kind: str, outside: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        _member(tf, "config.json", b"{}")
        if kind == "absolute path":
            _member(tf, str(outside / "abs.txt"))
        elif kind == "dot-dot":
            _member(tf, "../../" + outside.name + "/dotdot.txt")
        elif kind == "symlink out":
            _member(tf, "link", type=tarfile.SYMTYPE, linkname=str(outside))
        elif kind == "write through a symlink":
            _member(tf, "link", type=tarfile.SYMTYPE, linkname=str(outside))
            _member(tf, "link/through.txt")
        elif kind == "hardlink out":
            _member(tf, "hard", type=tarfile.LNKTYPE, linkname=str(outside / "target.txt"))
        elif kind == "device node":
            _member(tf, "dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        elif kind == "relative symlink out":
            _member(tf, "rel", type=tarfile.SYMTYPE, linkname="../../../../../../../../etc/passwd")
    return path


MALICIOUS = ["absolute path", "dot-dot", "symlink out", "write through a symlink", "hardlink out", "device node",
             "relative symlink out"]


@pytest.mark.parametrize("kind", MALICIOUS)
def test_safe_extract_refuses_a_malicious_tarball(tmp_path, kind):
    from archive.checks import safe_extract

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("secret")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises((tarfile.TarError, ValueError)):
        safe_extract(_malicious(tmp_path / "model.tar.gz", kind, outside), dest)
    assert sorted(p.name for p in outside.iterdir()) == ["target.txt"]
    assert (outside / "target.txt").read_text() == "secret"
    assert not any(p.is_symlink() for p in dest.rglob("*"))


@pytest.mark.parametrize("kind", MALICIOUS)
def test_training_packaging_refuses_a_malicious_model_tarball(tmp_path, monkeypatch, kind):
    """entrypoints/train.py extracts the archive it built into /opt/ml/model; fed a hostile tarball instead,
    it must refuse it, write nothing outside, and leave /opt/ml/model empty."""
    import archive.build
    import training.run
    from entrypoints.train import TrainPaths, train_and_package
    from training.callbacks import StopRequest
    from training.run import RunResult

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("secret")
    before = sorted(p.name for p in outside.iterdir())
    tarball = _malicious(tmp_path / "model.tar.gz", kind, outside)
    fake_checkpoint = tmp_path / "checkpoint"
    fake_checkpoint.mkdir()

    class Built:
        def __init__(self) -> None:
            self.tarball = tarball

    monkeypatch.setattr(training.run, "train", lambda *a, **k: RunResult(fake_checkpoint, {}))
    monkeypatch.setattr(archive.build, "build", lambda *a, **k: Built())
    model_dir = tmp_path / "ml" / "model"
    model_dir.mkdir(parents=True)
    paths = TrainPaths(hyperparameters={}, data_dir=tmp_path, model_dir=model_dir,
                       failure_file=tmp_path / "ml" / "output" / "failure", checkpoint_dir=None,
                       keep_checkpoints=False)
    with pytest.raises((tarfile.TarError, ValueError)):
        train_and_package(None, paths, StopRequest())
    assert sorted(p.name for p in outside.iterdir()) == before, "something was written outside the model directory"
    assert (outside / "target.txt").read_text() == "secret"
    assert list(model_dir.iterdir()) == [], "a refused archive must leave no model"


# -- model loading routes ---------------------------------------------------------------------------------------------
# (single-model first: every TorchServe binds gRPC on 127.0.0.1:7070/7071, so two servers cannot overlap; see
# tests/server/test_faults.py)
def test_single_model_mode_has_no_route_that_loads_or_unloads(archive, tmp_path):
    from tests.helpers.serving_fixtures import Serve

    base = tmp_path / "ml"
    shutil.copytree(archive["extracted"], base / "model")
    elsewhere = shutil.copytree(archive["extracted"], tmp_path / "elsewhere")
    server = Serve(base)
    try:
        server.wait_ping()
        assert post_json(server.url + "/models", {"model_name": "x", "url": str(elsewhere)})[0] == 405
        assert http("POST", server.url + f"/models?url={elsewhere}&model_name=y", b"")[0] == 405
        assert http("DELETE", server.url + "/models/model")[0] == 405
        assert post_json(server.url + "/invocations", {"text": "the team won"})[0] == 200
    finally:
        assert server.stop() == 0


# -- multi-model loading ---------------------------------------------------------------------------------------------
class _Listener:
    """A loopback TCP port that records whether anything connected (an SSRF canary)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def multi_model(archive, tmp_path_factory):
    from tests.helpers.serving_fixtures import Serve

    root = tmp_path_factory.mktemp("mme-security")
    base = root / "ml"
    models = base / "models"
    shutil.copytree(archive["extracted"], models / "good" / "model")
    outside = shutil.copytree(archive["extracted"], root / "outside")
    (models / "escape").mkdir()
    os.symlink(outside, models / "escape" / "model")
    pickled = shutil.copytree(archive["extracted"], models / "pickled" / "model")
    plant_pickle(pickled, root / "canary")
    hostile = shutil.copytree(archive["extracted"], root / "hostile")  # outside the root, with its own handler
    handler = hostile / "ts_handler.py"
    with handler.open("a", encoding="utf-8") as fh:  # runs when the worker imports the handler
        fh.write(f"\nopen({str(root / 'code-ran')!r}, 'w').close()\n")
    only_pickle = shutil.copytree(archive["extracted"], models / "only-pickle" / "model")
    (only_pickle / "model.safetensors").unlink()
    plant_pickle(only_pickle, root / "canary")
    server = Serve(base, SAGEMAKER_MULTI_MODEL="true", SAGEMAKER_MODEL_SERVER_TIMEOUT="30")
    try:
        server.wait_ping()
        good = {"model_name": "good", "url": str(models / "good" / "model")}
        status, _, body = post_json(server.url + "/models", good)
        assert status == 200, body
        yield {"server": server, "models": models, "outside": outside, "canary": root / "canary",
               "hostile": hostile, "code_ran": root / "code-ran"}
    finally:
        server.stop()


def _invocable(url: str, name: str) -> int:
    return post_json(f"{url}/models/{name}/invoke", {"text": "the team won"})[0]


def _listed(url: str) -> set[str]:
    return {m["modelName"] for m in json.loads(http("GET", url + "/models")[2]).get("models", [])}


def test_multi_model_serves_a_model_from_under_the_root(multi_model):
    url = multi_model["server"].url
    deadline = time.monotonic() + 120
    while _invocable(url, "good") != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _invocable(url, "good") == 200


def _refused(multi_model, name: str, target: str) -> tuple[int, bytes]:
    url = multi_model["server"].url
    status, _, body = post_json(url + "/models", {"model_name": name, "url": target})
    return status, body


@pytest.mark.parametrize("kind", ["outside path", "dot-dot path", "symlink out of the root", "file:// URL outside",
                                  "http:// URL", "https:// URL", "s3:// URL"])
def test_multi_model_loads_nothing_from_outside_the_models_root(multi_model, kind):
    url, models, outside = multi_model["server"].url, multi_model["models"], multi_model["outside"]
    listener = _Listener()
    try:
        target = {
            "outside path": str(outside),
            "dot-dot path": f"{models}/../../{outside.parent.name}/{outside.name}",
            "symlink out of the root": str(models / "escape" / "model"),
            "file:// URL outside": f"file://{outside}",
            "http:// URL": f"http://127.0.0.1:{listener.port}/model.tar.gz",
            "https:// URL": f"https://127.0.0.1:{listener.port}/model.tar.gz",
            "s3:// URL": "s3://bucket/model.tar.gz",
        }[kind]
        name = "rogue-" + kind.split()[0].replace(":", "").replace("/", "")
        status, body = _refused(multi_model, name, target)
        assert status >= 400, body
        assert _invocable(url, name) >= 400
        assert listener.connections == 0, "the server fetched a URL it should have refused"
    finally:
        listener.close()
    assert _invocable(url, "good") == 200, "the loaded model must keep serving"


def test_multi_model_runs_no_code_from_outside_the_models_root(multi_model):
    url = multi_model["server"].url
    status, body = _refused(multi_model, "hostile", str(multi_model["hostile"]))
    assert status >= 400, body
    assert not multi_model["code_ran"].exists(), "a handler outside the models root was imported"
    assert _invocable(url, "good") == 200


def test_multi_model_checks_a_registration_by_query_string_too(multi_model):
    """TorchServe reads the query string when the body is not JSON: that form is checked the same way."""
    url = multi_model["server"].url
    status, _, body = http("POST", f"{url}/models?model_name=hostile-q&url={multi_model['hostile']}")
    assert status == 400 and b"outside" in body, body
    assert not multi_model["code_ran"].exists()


def test_multi_model_refuses_registration_fields_that_name_code(multi_model):
    url, models = multi_model["server"].url, multi_model["models"]
    status, _, body = post_json(url + "/models", {"model_name": "h", "url": str(models / "good" / "model"),
                                                  "handler": str(multi_model["hostile"] / "ts_handler.py")})
    assert status == 400 and "handler" in json.loads(body)["message"]
    assert _invocable(url, "h") == 404


@pytest.mark.parametrize("method, path", [("POST", "/workflows?url=x.war"), ("GET", "/api-description"),
                                          ("OPTIONS", "/"), ("GET", "/metrics")])
def test_multi_model_serves_only_the_routes_sagemaker_uses(multi_model, method, path):
    status, _, body = http(method, multi_model["server"].url + path)
    assert status == 404 and "not served by a multi-model endpoint" in json.loads(body)["message"]


def test_multi_model_loads_a_file_url_under_the_root(multi_model):
    url, models = multi_model["server"].url, multi_model["models"]
    status, _, body = post_json(url + "/models", {"model_name": "by-file-url", "url": f"file://{models}/good/model"})
    try:
        assert status == 200, body
        deadline = time.monotonic() + 120
        while _invocable(url, "by-file-url") != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _invocable(url, "by-file-url") == 200
    finally:
        http("DELETE", url + "/models/by-file-url")


def test_multi_model_never_unpickles_weights(multi_model):
    """An archive under the root with only a pickled pytorch_model.bin cannot load; and no load unpickles it."""
    url = multi_model["server"].url
    status, body = _refused(multi_model, "only-pickle", str(multi_model["models"] / "only-pickle" / "model"))
    assert status >= 400 or _invocable(url, "only-pickle") >= 400, body
    assert not multi_model["canary"].exists()
    assert _invocable(url, "good") == 200


def test_multi_model_refuses_an_archive_with_pickled_weights(multi_model):
    url = multi_model["server"].url
    status, body = _refused(multi_model, "pickled", str(multi_model["models"] / "pickled" / "model"))
    try:
        assert status >= 400, body
        assert _invocable(url, "pickled") >= 400
    finally:
        assert not multi_model["canary"].exists()


# -- static analysis -------------------------------------------------------------------------------------------------
#: bandit findings of medium or high severity that were reported and explained (docs/reliability.md), by
#: (severity, test id, file). A new one fails the test; one that disappears (fixed, or a reasoned # nosec) is fine.
EXPLAINED = {
    # urllib.request.urlopen on the server's own loopback address (ping / management API)
    ("MEDIUM", "B310", "entrypoints/torchserve.py"),
    # from_pretrained without a revision: serving loads a local checkpoint directory, training the base model
    # the user names (a local path or a hub id; pinning a revision is the caller's choice)
    ("MEDIUM", "B615", "runtimes/torch_runtime.py"),
    ("MEDIUM", "B615", "training/run.py"),
    # the model check loads the tokenizer the user names (a local folder or a hub id) to say why it cannot serve
    ("MEDIUM", "B615", "runtimes/model_source.py"),
}


@pytest.mark.skipif(not BANDIT.exists(), reason=f"bandit is not installed beside {sys.executable}")
def test_bandit_finds_nothing_new():
    proc = subprocess.run([str(BANDIT), "-q", "-r", *CODE_DIRS, "-f", "json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    report = json.loads(proc.stdout)
    assert not report.get("errors"), report["errors"]
    found = {(r["issue_severity"], r["test_id"], r["filename"]) for r in report["results"]
             if r["issue_severity"] in ("MEDIUM", "HIGH")}
    high = {f for f in found if f[0] == "HIGH"}
    assert high <= EXPLAINED, f"unexplained HIGH severity findings: {sorted(high - EXPLAINED)}"
    assert found <= EXPLAINED, f"new findings: {sorted(found - EXPLAINED)}"
