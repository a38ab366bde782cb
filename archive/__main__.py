"""``python -m archive --checkpoint DIR --out DIR [--name NAME] [--runtime onnx|torch] [--quantize int8]
[--data DIR] [--keep-weights]`` (``make archive CHECKPOINT=... OUT=...``).

The model is served with ONNX Runtime where the exported model answers what torch answers on the test set,
with torch otherwise; the last lines say which and why. An ONNX archive carries the graph, not the weights
(--keep-weights keeps them, and transformers' tokenizer files, as a way back to torch).
Exit status: 0 archived, 2 bad input, 3 int8 refused.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from archive.build import QUANTIZATIONS, RUNTIMES, ArchiveSettings, Built, RuntimeOptions, build
from archive.checks import CheckpointError
from archive.quantize import QuantizationRefused
from runtimes.model_source import ModelError

EXIT_BAD_INPUT, EXIT_REFUSED = 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m archive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint directory written by training")
    parser.add_argument("--out", required=True, help="folder for <name>.mar and model.tar.gz")
    parser.add_argument("--name", help="model name (default: the checkpoint folder's name)")
    parser.add_argument("--batch-size", type=int, default=ArchiveSettings.batch_size)
    parser.add_argument("--max-batch-delay-ms", type=int, default=ArchiveSettings.max_batch_delay_ms)
    parser.add_argument("--response-timeout-s", type=int, default=ArchiveSettings.response_timeout_s)
    parser.add_argument("--runtime", choices=RUNTIMES, default=RuntimeOptions.runtime,
                        help="onnx: ONNX Runtime where it passes the parity check, torch otherwise (default); "
                             "torch: no export")
    parser.add_argument("--quantize", choices=[q for q in QUANTIZATIONS if q], default=None,
                        help="int8: dynamic int8 quantization, refused when the primary dev metric drops by more "
                             "than 0.005 (relative 0.5%% for regression's mse); needs --data")
    parser.add_argument("--data", type=Path, default=None,
                        help="the data folder (train/dev/test.csv): test.csv for the parity check (needed for "
                             "models that read boxes), dev.csv for the quantization gate")
    parser.add_argument("--keep-weights", action="store_true",
                        help="ONNX archives: keep model.safetensors (and transformers' tokenizer files) beside the "
                             "graph, a way back to torch inside the archive; dropped by default")
    return parser


def _summary(built: Built) -> str:
    serving = built.serving
    lines = [f"wrote {built.mar}", f"wrote {built.tarball}", f"runtime: {built.runtime}"
             + (f" ({serving.onnx_file})" if serving.onnx_file else ""), f"reason: {serving.reason}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # our progress at INFO; libraries only from WARNING (ONNX Runtime's quantizer logs every tensor at INFO)
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
    logging.getLogger("archive").setLevel(logging.INFO)
    try:
        settings = ArchiveSettings(args.batch_size, args.max_batch_delay_ms, args.response_timeout_s)
        options = RuntimeOptions(runtime=args.runtime, quantize=args.quantize, data=args.data,
                                 keep_weights=args.keep_weights)
        built = build(args.checkpoint, args.out, args.name, settings, options)
    except QuantizationRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (CheckpointError, ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(_summary(built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
