"""The drift report's one figure: each feature's test-split and current shares per bin, side by side."""
from __future__ import annotations

from pathlib import Path

from launcher.drift import DriftReport


def draw(report: DriftReport, path: Path) -> None:
    """Write a PNG with one bar chart per feature (Agg: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(len(report.features), 1)
    figure, axes = plt.subplots(1, count, figsize=(5 * count, 4), squeeze=False)
    for axis, feature in zip(axes[0], report.features):
        positions = range(len(feature.bins))
        axis.bar([p - 0.2 for p in positions], feature.expected, width=0.4, label="test split")
        axis.bar([p + 0.2 for p in positions], feature.actual, width=0.4, label="current")
        axis.set_xticks(list(positions), feature.bins, rotation=60, ha="right", fontsize=7)
        axis.set_title(f"{feature.name}: PSI {feature.psi:.3f}" + (" DRIFT" if feature.flagged else ""))
        axis.set_ylabel("share")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
