"""What every variant of one measurement shares: steps, batch size, sequence length, learning rate, seed."""
from __future__ import annotations

from dataclasses import dataclass

#: the real run: 300 steps of 16 is about 3 epochs of each corpus's ~1,400 training rows (the examples' usual
#: 3 epochs). It is long: measured at 150 steps with one thread per run (2026-11-30), a run took 1.5-2 min on the
#: tweets at sequence 32 and ~3 min on BBC at 64, so the default 27 runs at sequence 128 take roughly two hours on
#: 2 cores. At 150 steps no variant learns WNUT-16's entities (F1 0-11): fewer steps do not make a useful run.
STEPS = 300
BATCH_SIZE = 16
MAX_SEQ_LENGTH = 128
LEARNING_RATE = 5e-5
SEEDS = (1, 2, 3)
#: --quick: a smoke run on a tiny subset (it checks the wiring, its figures mean nothing)
QUICK_STEPS = 2
QUICK_BATCH_SIZE = 8
QUICK_SEEDS = (1,)
QUICK_SIZES = {"train": 48, "dev": 16, "test": 16}


@dataclass(frozen=True)
class Setting:
    """One measurement's shared hyperparameters."""

    steps: int
    batch_size: int
    max_seq_length: int
    learning_rate: float
    seed: int
