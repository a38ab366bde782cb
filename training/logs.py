"""Logging set-up for the command lines: plain lines on stdout, which SageMaker ships to CloudWatch."""
from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: int = logging.INFO) -> None:
    # transformers 5 prints a load report and a sharding note on every from_pretrained; the newly initialised
    # head they describe is expected when fine-tuning. Errors still show.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # imported already: the variable above came too late
        sys.modules["transformers"].logging.set_verbosity_error()
    logging.basicConfig(stream=sys.stdout, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
    for noisy in ("transformers.modeling_utils", "urllib3", "matplotlib", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
