"""bf16 autocast training on this CPU's bf16 units (AMX or AVX-512 bf16): a tiny BERT trains a few steps with
mixed_precision=bf16, its matmuls ran in bf16 while the weights stay fp32, metrics.json says bf16, the saved
weights are fp32, and the scores training wrote are the fp32 answers serving gives for the same weights."""
from __future__ import annotations

import json

import pytest

from runtimes.cpu import read_cpu
from runtimes.torch_runtime import load_checkpoint
from tasks.predict import predict
from training.config import TrainConfig
from training.data import load_dataset
from training.device import choose, probe
from training.run import load_base, train
from training.trainer import fit

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not read_cpu().native_bf16,
                       reason=f"this CPU ({read_cpu().kind}) has no bf16 in hardware (AMX or AVX-512 bf16), so "
                              "mixed_precision=bf16 is refused on it"),
]


def _config(model: object, precision: str) -> TrainConfig:
    return TrainConfig.from_hyperparameters({
        "task_name": "classif", "model_name": str(model), "max_steps": "4", "per_device_train_batch_size": "8",
        "max_seq_length": "32", "stride": "8", "eval_steps": "2", "mixed_precision": precision})


@pytest.fixture(autouse=True)
def _on_the_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this checks bf16 on the CPU; a visible GPU would train instead")


def test_bf16_training_records_bf16_and_saves_fp32_weights(tiny_model_dir, small_data, tmp_path):
    import torch
    from safetensors.torch import load_file

    data = small_data("classif")
    out = train(_config(tiny_model_dir("bert"), "bf16"), data, tmp_path / "model").output

    device = json.loads((out / "metrics.json").read_text())["info"]["device"]
    assert (device["device"], device["precision"]) == ("cpu", "bf16")
    assert (device["cpu_kind"], device["cpu_bf16"]) == (read_cpu().kind, True)
    weights = load_file(str(out / "model.safetensors"))
    assert weights and {str(t.dtype) for t in weights.values()} == {str(torch.float32)}, \
        "autocast computes in bf16, but the weights it updates and saves are fp32"

    # what training scored (test_predictions.jsonl) is what the fp32 endpoint answers: evaluation did not run
    # under the autocast the Trainer had put on the model's forward (bf16 would move these by ~1e-3)
    spec, tokenizer, runner = load_checkpoint(out)
    served = predict(spec, tokenizer, runner, load_dataset(data, "classif").test)
    written = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert len(served) == len(written) > 0
    for w, s in zip(written, served):
        assert s["pred"] == w["pred"]
        assert w.get("proba") is not None and s.get("proba") == pytest.approx(w["proba"], abs=1e-6)


@pytest.mark.parametrize("precision, during", [("bf16", "torch.bfloat16"), ("no", "torch.float32")])
def test_the_trainer_autocasts_in_bf16_and_hands_back_an_fp32_model(precision, during, tiny_model_dir, small_data,
                                                                   tmp_path):
    """The Trainer's bf16 with use_cpu really runs the forward under torch.autocast("cpu", torch.bfloat16)
    (accelerate's prepare_model wraps it); mixed_precision=no keeps fp32 on the same bf16 CPU; and the model
    fit() returns computes in fp32 again."""
    import torch

    config = _config(tiny_model_dir("bert"), precision)
    data = load_dataset(small_data("classif"), "classif")
    device = choose(config, probe())
    assert device.precision == precision
    spec, tokenizer, model, head = load_base(config, data)
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    seen: list[str] = []
    linear.register_forward_hook(lambda module, args, output: seen.append(str(output.dtype)))

    fitted = fit(config, spec, tokenizer, model, data, str(tmp_path / "scratch"), device, persist=False,
                 head_names=head)
    assert seen and set(seen) == {during}
    assert {str(p.dtype) for p in fitted.model.parameters()} == {"torch.float32"}

    seen.clear()
    batch = tokenizer(["the team won the final match"], return_tensors="pt")
    with torch.no_grad():
        fitted.model(**batch)
    assert seen == ["torch.float32"], "the returned model still runs under the training's autocast"
