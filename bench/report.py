"""FLOPs at the padding actually used, and the markdown table (ratios first)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.texts import corpus
from bench.training_speed import ROWS as TRAINING_ROWS


def flops_per_record(checkpoint: Path, n: int) -> dict[str, Any]:
    """Forward FLOPs per record: 2 x encoder weights per token plus the attention terms (4 x layers x hidden x T
    per token), at our sorted micro-batch padding and at padding to max_seq_length."""
    from transformers import AutoConfig

    from runtimes.torch_runtime import load_tokenizer, read_spec
    from tasks.batching import plan_batches
    from tasks.encode import encode
    from tasks.fields import Record

    spec = read_spec(checkpoint)
    # through AutoConfig: its attribute maps give every family the same names (DistilBERT's n_layers, dim, ...)
    config = AutoConfig.from_pretrained(checkpoint)
    layers, hidden, inter = config.num_hidden_layers, config.hidden_size, _intermediate(config)
    weights = layers * (4 * hidden * hidden + 2 * hidden * inter)
    tokenizer = load_tokenizer(checkpoint, spec.prefix_space)
    features = encode(spec, tokenizer, [Record(text=t) for t in corpus(n)])
    lengths = [len(f) for f in features]

    def cost(width: int, rows: int) -> float:
        return float(rows * width * (2 * weights + 4 * layers * hidden * width))

    sorted_total = sum(cost(max(lengths[i] for i in group), len(group)) for group in plan_batches(lengths, 32, 16384))
    padded_total = cost(spec.max_seq_length, len(features))
    return {"sorted": sorted_total / n, "padded_to_max": padded_total / n, "max_seq_length": spec.max_seq_length,
            "encoder_weights": weights}


def _intermediate(config: object) -> int:
    """The feed-forward width; DistilBERT calls it hidden_dim and maps no standard name onto it."""
    for name in ("intermediate_size", "hidden_dim"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"{type(config).__name__} names no feed-forward width (intermediate_size)")


def _rate(runs: dict[str, Any], label: str) -> float | None:
    value = runs.get(label, {}).get("records_per_s")
    return float(value) if value else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


#: what a results file measured before it named its model and tasks (the embedded MiniLM, classif then NER)
DEFAULT_TASKS = ("classif", "ner")


def _heading(results: dict[str, Any]) -> list[str]:
    lines = [f"Model: {results['model']}", ""] if "model" in results else []
    cpu = results.get("cpu")
    if cpu:
        lines += [f"CPU: {cpu['cpu_model']} ({cpu['cpu_kind']}; flags {' '.join(cpu['cpu_flags']) or 'none'}), "
                  f"{results.get('cpus', '?')} cores", ""]
    return lines


#: the default stack against pipeline(list, 32) and against our own fp32 ONNX, by CPU kind (issue 21's targets)
PIPELINE_TARGET = {"amx": ">= 8x"}
OWN_FP32_TARGET = {"amx": ">= 3x"}
#: the CPU paths, in the order the tables list them
PATHS = ("auto", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-bf16")


#: older results named ONNX Runtime's fp32 path "onnx"
OLD_LABELS = {"onnx-fp32": "onnx"}


def _run(runs: dict[str, Any], task: str, what: str, path: str) -> dict[str, Any]:
    """The ``what`` run ("served", "direct", "latency-direct") of ``path``, under its older label where it has one."""
    old = OLD_LABELS.get(path)
    return dict(runs.get(f"{task}/{what}/{path}") or (runs.get(f"{task}/{what}/{old}") if old else None) or {})


def _served(runs: dict[str, Any], task: str, path: str) -> dict[str, Any]:
    return _run(runs, task, "served", path)


def _direct(runs: dict[str, Any], task: str, path: str) -> float | None:
    """The raw forward's rate of ``path``."""
    value = _run(runs, task, "direct", path).get("records_per_s")
    return float(value) if value else None


def markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    tasks = tuple(results.get("tasks", DEFAULT_TASKS))
    if "gemm" not in runs:  # `--only lean`: the throughput table would be all n/a
        return "\n".join(_heading(results) + lean(results)[1:]) + "\n"
    kind = results.get("cpu", {}).get("cpu_kind", "")
    rows = []
    for task in tasks:
        auto = _served(runs, task, "auto") or _served(runs, task, "onnx-fp32") or _served(runs, task, "torch")
        auto_rate = auto.get("records_per_s")
        chosen = runs.get(f"{task}/direct/auto", {}).get("path", "onnx fp32")
        for path in ("torch", "auto", "onnx-fp32"):
            rows.append((f"{task}: our stack / raw forward ({path})", _ratio(
                _served(runs, task, path).get("records_per_s"), _direct(runs, task, path)), ">= 0.85x"))
        rows.append((f"{task}: default stack ({chosen}) / pipeline(list, batch 32)",
                     _ratio(auto_rate, _rate(runs, f"{task}/pipeline-list")), PIPELINE_TARGET.get(kind, ">= 4x")))
        rows.append((f"{task}: default stack / our fp32 ONNX stack",
                     _ratio(auto_rate, _served(runs, task, "onnx-fp32").get("records_per_s")),
                     OWN_FP32_TARGET.get(kind, "")))
        rows.append((f"{task}: default stack / pipeline one text per call",
                     _ratio(auto_rate, _rate(runs, f"{task}/pipeline-single")), ">= 2x"))
        for path in PATHS[2:]:
            rows.append((f"{task}: {path} / onnx-fp32 (raw forward)",
                         _ratio(_direct(runs, task, path), _direct(runs, task, "onnx-fp32")), ""))
        rows.append((f"{task}: sorted micro-batches / padded to max_seq_length (torch)",
                     _ratio(_rate(runs, f"{task}/direct/torch"), _rate(runs, f"{task}/padded/torch")), ""))
        direct_run = _run(runs, task, "latency-direct", "auto") or _run(runs, task, "latency-direct", "onnx-fp32") \
            or _run(runs, task, "latency-direct", "torch")
        direct = direct_run.get("p50_ms")
        served = auto.get("latency_sequential", {}).get("p50_ms")
        rows.append((f"{task}: /invocations p50 overhead over the direct call",
                     f"{served - direct:.1f} ms" if served and direct else "n/a", "<= 2 ms"))
        ping = auto.get("ping", {}).get("p50_ms")
        rows.append((f"{task}: of which TorchServe's own /ping round trip (p50)",
                     f"{ping:.1f} ms" if ping else "n/a", ""))
    rows += _training_rows(runs)
    first = tasks[0]
    one, two = (next((r for p in ("auto", "onnx", "torch") if (r := _rate(runs, f"{first}/served/{p}/{w}"))), None)
                for w in ("1x2", "2x1"))
    rows.append((f"workers x threads: 1x2 / 2x1 ({first}, records/s)", _ratio(one, two), "pick the larger"))
    gemm = runs.get("gemm", {}).get("gflops")
    lines = [*_heading(results), "| ratio (same run) | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", f"Best fp32 GEMM this run: {gemm:.0f} GFLOP/s" if gemm else "", "",
              "| path | records/s | fraction of GEMM roof | p50 ms | p99 ms | peak RSS MB |",
              "|---|---|---|---|---|---|"]
    for label, result in runs.items():
        if "records_per_s" not in result:
            continue
        task = label.split("/")[0]
        flops = results.get(f"{task}_flops", {})
        per_record = flops.get("padded_to_max" if "padded" in label else "sorted")
        fraction = f"{result['records_per_s'] * per_record / (gemm * 1e9):.0%}" if gemm and per_record else ""
        lat = result.get("latency_sequential", {})
        rss = result.get("worker_peak_rss_mb") or result.get("peak_rss_mb")
        p50, p99 = lat.get("p50_ms", float("nan")), lat.get("p99_ms", float("nan"))
        speed = result["records_per_s"]
        served_path = f" ({result['path']})" if result.get("path") and label.endswith("/auto") else ""
        lines.append(f"| {label}{served_path} | {speed:.1f} | {fraction} | {p50:.1f} | {p99:.1f} | {rss or 0:.0f} |")
    for label in (f"{first}/latency-direct/torch", f"{first}/latency-direct/auto", *TRAINING_ROWS):
        if label in runs:
            lines.append(f"\n`{label}`: " + _details(runs[label]))
    return "\n".join(lines + lean(results)) + "\n"


def _training_rows(runs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Ours against the plain Trainer at the same precision (fp32; a results file from before the precision rows
    has ours as `make train` ran it), then bf16 autocast against fp32, which settles CPU_BF16_KINDS."""
    fp32, plain = runs.get("training/ours-fp32") or runs.get("training/ours", {}), runs.get("training/plain", {})
    bf16 = runs.get("training/ours-bf16", {})
    kind = bf16.get("cpu_kind") or fp32.get("cpu_kind") or "this CPU"
    rows = []
    for what, key in (("end to end, ours evaluates dev 4 times", "train_samples_per_second"),
                      ("training steps alone", "step_samples_per_second")):
        rows.append((f"training samples/s: make train / plain Trainer, both fp32 ({what})",
                     _ratio(fp32.get(key), plain.get(key)), ">= 1x"))
    for what, key in (("end to end", "train_samples_per_second"), ("training steps alone", "step_samples_per_second")):
        rows.append((f"training samples/s: bf16 autocast / fp32, make train on {kind} ({what})",
                     _ratio(bf16.get(key), fp32.get(key)) if "skipped" not in bf16 else "skipped",
                     "> 1x keeps the kind in training.device.CPU_BF16_KINDS"))
    return rows


def _details(result: dict[str, Any]) -> str:
    """One run's figures on a line: its numbers, the precision it trained in, or why it was skipped."""
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    named = [f"{k}={result[k]}" for k in ("precision", "cpu_kind") if isinstance(result.get(k), str)]
    return ", ".join([f"{k}={v:.2f}" for k, v in result.items() if isinstance(v, (int, float))] + named)


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return f"{value:.{digits}f}{unit}" if isinstance(value, (int, float)) else "n/a"


def lean(results: dict[str, Any]) -> list[str]:
    """Cold start with its breakdown, worker RSS, archive sizes and multi-model density (bench/cold_start.py), of
    the first task benched (classif by default)."""
    task = tuple(results.get("tasks", DEFAULT_TASKS))[0]
    runs, sizes = results["runs"], results.get(f"{task}_sizes", {})
    auto = runs.get(f"{task}/cold_start/auto", {})
    onnx = runs.get(f"{task}/cold_start/onnx-fp32") or runs.get(f"{task}/cold_start/onnx", {})
    torch = runs.get(f"{task}/cold_start/torch", {})
    density = runs.get(f"{task}/density/auto") or runs.get(f"{task}/density/onnx", {})
    if not (auto or onnx or torch or sizes):
        return []
    served, before = sizes.get("onnx", {}), sizes.get("onnx-keep-weights", {})
    chosen = runs.get(f"{task}/direct/auto", {}).get("path", "default path")
    rows = [
        (f"serve -> first prediction, p50 of {len(auto.get('runs', []))} cold starts (default path: {chosen})",
         _fmt(auto.get("seconds"), " s"), "<= 3 s"),
        ("peak RSS of the worker, default path", _fmt(auto.get("worker_peak_rss_mb"), " MB", 0), "<= 300 MB"),
        ("the same two, ONNX Runtime fp32", f"{_fmt(onnx.get('seconds'), ' s')} · "
         f"{_fmt(onnx.get('worker_peak_rss_mb'), ' MB', 0)}", "<= 3 s · <= 300 MB"),
        ("the same, torch archive", _fmt(torch.get("seconds"), " s"), ""),
        ("peak RSS of the worker, torch archive", _fmt(torch.get("worker_peak_rss_mb"), " MB", 0), ""),
        ("peak RSS of all of serve (serverless memory), ONNX · torch archive",
         f"{_fmt(onnx.get('serve_peak_rss_mb'), ' MB', 0)} · {_fmt(torch.get('serve_peak_rss_mb'), ' MB', 0)}",
         "fits the launcher's serverless minimum"),
        ("ONNX archive (model.tar.gz) / the model files of its gated paths",
         _fmt(served.get("tarball_over_models") or served.get("tarball_over_onnx"), "x"), "<= 1.1x"),
        ("those model files: " + ", ".join(f"{k} {v:.1f} MB" for k, v in served.get("paths", {}).items()),
         _fmt(served.get("models_mb"), " MB", 1), ""),
        ("ONNX archive size: with the weights (--keep-weights) -> without",
         f"{_fmt(before.get('tarball_mb'), ' MB', 1)} -> {_fmt(served.get('tarball_mb'), ' MB', 1)}", ""),
        (f"multi-model, {density.get('models', 'n')} models: load time per model (p50)",
         _fmt(density.get("load_s_p50"), " s"), ""),
        ("multi-model: worker RSS per loaded model (p50)", _fmt(density.get("rss_per_model_mb_p50"), " MB", 0), ""),
        ("multi-model: memory given back by unloading them all", _fmt(density.get("returned_mb"), " MB", 0), ""),
    ]
    lines = ["", "| lean serving (same run) | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    for label, result in ((f"default: {chosen}", auto), ("ONNX fp32", onnx), ("torch", torch)):
        steps = result.get("p50", {})
        if steps:
            lines.append(f"\ncold start breakdown, p50 ({label}): " + ", ".join(
                f"{k.removesuffix('_s')} {v:.2f} s" for k, v in steps.items() if k.endswith("_s")))
    return lines
