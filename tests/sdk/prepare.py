"""What the SDK tier needs from this repository, written with the project venv before the SDK venv runs the tests.

The SDK venv holds only ``sagemaker<3`` and pytest (its pins of boto3, numpy and the like differ from ours), so
it never imports our packages: this step writes a tiny random base model, a small copy of the classif examples
and the tuning facts (metric definitions, hyperparameter bounds) as files the tests read.

    python tests/sdk/prepare.py WORK_DIR
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script (run.sh): our packages and tests.helpers from this checkout

from launcher.jobs.metrics import metric_definitions  # noqa: E402 -- after the sys.path line that makes the repository importable
from tests.helpers import EXAMPLES, subset  # noqa: E402 -- as above
from tests.helpers.tiny_models import make_base_model  # noqa: E402 -- as above
from training.config import hyperparameters  # noqa: E402 -- as above

TASK = "classif"


def main(work: Path) -> None:
    make_base_model("bert", work / "base")
    subset(EXAMPLES / TASK, work / "training", {"train": 32, "dev": 12, "test": 12})
    declared = {h.name: {**asdict(h), "kind": h.kind.__name__} for h in hyperparameters()}
    (work / "tuning.json").write_text(json.dumps(
        {"task": TASK, "metric_definitions": metric_definitions(TASK), "hyperparameters": declared}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
