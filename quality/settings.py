"""What every variant of one measurement shares: steps, batch size, sequence length, learning rate, seed."""
from __future__ import annotations

from dataclasses import dataclass

#: shared by every corpus; the steps and sequence length are each corpus's own (quality/corpora.py)
BATCH_SIZE = 16
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
