"""``python -m archive --checkpoint DIR --out DIR [--name NAME]`` (``make archive CHECKPOINT=... OUT=...``)."""
from __future__ import annotations

import argparse
import logging
import sys

from archive.build import ArchiveSettings, build
from archive.checks import CheckpointError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archive", description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint directory written by training")
    parser.add_argument("--out", required=True, help="folder for <name>.mar and model.tar.gz")
    parser.add_argument("--name", help="model name (default: the checkpoint folder's name)")
    parser.add_argument("--batch-size", type=int, default=ArchiveSettings.batch_size)
    parser.add_argument("--max-batch-delay-ms", type=int, default=ArchiveSettings.max_batch_delay_ms)
    parser.add_argument("--response-timeout-s", type=int, default=ArchiveSettings.response_timeout_s)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    try:
        settings = ArchiveSettings(args.batch_size, args.max_batch_delay_ms, args.response_timeout_s)
        built = build(args.checkpoint, args.out, args.name, settings)
    except (CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {built.mar}\nwrote {built.tarball}\nruntime: {built.runtime}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
