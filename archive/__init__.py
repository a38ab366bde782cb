"""``make archive``: a checkpoint + the handler + the task code -> ``<name>.mar`` and ``model.tar.gz``."""
