"""Container entry points: ``python -m entrypoints train|serve``, the commands SageMaker runs.

They translate SageMaker's environment and ``/opt/ml`` paths into one typed config at the edge; nothing below
them reads the environment. The same commands run from a checkout with ``SAGEMAKER_BASE_DIR`` pointing at a
temporary ``/opt/ml`` tree, so the contract is tested without Docker too.
"""
