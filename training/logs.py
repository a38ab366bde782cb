"""Logging set-up for the command lines: plain lines on stdout, which SageMaker ships to CloudWatch."""
from __future__ import annotations

import logging
import sys


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(stream=sys.stdout, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
    for noisy in ("transformers.modeling_utils", "urllib3", "matplotlib", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
