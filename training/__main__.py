"""``python -m training --data DIR --out DIR task_name=ner max_steps=50 ...`` -- local training.

Hyperparameters are given as ``name=value`` pairs, exactly the strings SageMaker would pass.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from runtimes.model_source import ModelError
from training.config import ConfigError, TrainConfig, hyperparameters
from training.data import DataError
from training.outputs import OutputError, shared_checkpoint_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    listed = "\n".join(f"  {h.name}: {h.describe()}" for h in hyperparameters())
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                     epilog="hyperparameters:\n" + listed,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with train.csv, dev.csv, test.csv")
    parser.add_argument("--out", required=True, help="new or empty folder for the checkpoint")
    parser.add_argument("hyperparameters", nargs="*", metavar="name=value")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from training.logs import setup_logging
    from training.run import train

    setup_logging()
    args = parse_args(argv)
    try:
        pairs = dict(item.split("=", 1) for item in args.hyperparameters)
    except ValueError:
        print("error: hyperparameters are name=value pairs", file=sys.stderr)
        return 2
    try:
        config = TrainConfig.from_hyperparameters(pairs)
        # under torchrun every rank must use the same checkpoint folder
        result = train(config, args.data, args.out, shared_checkpoint_dir(os.environ.get("TORCHELASTIC_RUN_ID")))
    except (ConfigError, DataError, ModelError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.output is not None:
        logging.getLogger("training").info("checkpoint written to %s", result.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
