"""The whole local loop on the embedded MiniLM: train each task on the shipped examples, `make archive`,
start TorchServe, send one application/json and one application/jsonlines request per task, print the answers,
stop the server. ``make demo`` runs it on a fresh machine; ``--quick`` trains fewer steps."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.build import RuntimeOptions, build  # noqa: E402 -- after the sys.path line
from entrypoints.torchserve import TorchServe, TorchServeConfig  # noqa: E402 -- after the sys.path line
from training.config import TrainConfig  # noqa: E402 -- after the sys.path line
from training.logs import setup_logging  # noqa: E402 -- after the sys.path line
from training.run import train  # noqa: E402 -- after the sys.path line

#: model name -> (task, example folder, optimizer steps, a sample request record)
DEMO = {
    "ner": ("ner", "ner", 120, {"text": "Maya Patel joined Globex in Toronto last year ."}),
    "classif": ("classif", "classif", 100, {"text": "Yesterday the striker scored twice in the second half ."}),
    "multilabel": ("multilabel-classif", "multilabel-classif", 120,
                   {"text": "Review : delivery was fast , and way too expensive ."}),
    "regression": ("regression", "regression", 120, {"text": "The concert was absolutely superb ."}),
    "pair": ("pair-classif", "pair-classif", 120, {"text": "This morning revenue went up .",
                                                   "text_pair": "quarterly revenue fell short of expectations ."}),
}
log = logging.getLogger("demo")


def post(url: str, body: bytes, content_type: str) -> str:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.read().decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "out" / "demo"))
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--quick", action="store_true", help="a quarter of the steps (a smoke run)")
    args = parser.parse_args()
    setup_logging()
    out = Path(args.out)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    for name, (task, folder, steps, _) in DEMO.items():
        started = time.perf_counter()
        config = TrainConfig.from_hyperparameters({
            "task_name": task, "max_steps": str(max(4, steps // 4) if args.quick else steps),
            "learning_rate": "1e-4", "max_seq_length": "64", "per_device_train_batch_size": "16"})
        result = train(config, ROOT / "examples" / "data" / folder, out / "checkpoints" / name)
        built = build(result.output, out / "store", name=name,
                      runtime=RuntimeOptions(data=ROOT / "examples" / "data" / folder))
        built.tarball.rename(out / "store" / f"{name}.tar.gz")
        test = {k: round(v, 4) for k, v in result.metrics["test"].items() if isinstance(v, float)}
        print(f"[{name}] trained in {time.perf_counter() - started:.0f}s, runtime {built.runtime}, test {test}")
    port = args.port
    config = TorchServeConfig(model_store=out / "store", inference_address=f"http://127.0.0.1:{port}",
                              management_address=f"http://127.0.0.1:{port + 1}",
                              load_models=[f"{name}={name}.mar" for name in DEMO])
    server = TorchServe(config, out / "torchserve", stdout=open(out / "torchserve.log", "wb"))
    try:
        for name in DEMO:
            server.wait_ready(name, timeout=300)
        print(f"TorchServe is serving {len(DEMO)} models on 127.0.0.1:{port} (log: {out / 'torchserve.log'})")
        for name, (_, _, _, record) in DEMO.items():
            url = f"{config.inference_address}/predictions/{name}"
            payload = json.dumps({"data": [record]}).encode()
            print(f"\n$ curl {url} -H 'Content-Type: application/json' -d '{payload.decode()}'")
            print(post(url, payload, "application/json"))
            lowered = {k: v.lower() for k, v in record.items()}
            lines = (json.dumps(record) + "\n" + json.dumps(lowered) + "\n").encode()
            print(f"$ curl {url} -H 'Content-Type: application/jsonlines' --data-binary <two lines>")
            print(post(url, lines, "application/jsonlines"), end="")
    finally:
        server.stop()
        print("\nTorchServe stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
