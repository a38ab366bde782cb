"""Dispatch ``train`` / ``serve`` (SageMaker runs the image with one of them as its argument)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = {"train": "entrypoints.train", "serve": "entrypoints.serve", "evaluate": "entrypoints.evaluate"}
    if not args or args[0] not in commands:
        print(f"usage: python -m entrypoints {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    import importlib

    status: int = importlib.import_module(commands[args[0]]).main(args[1:])
    return status


if __name__ == "__main__":
    sys.exit(main())
