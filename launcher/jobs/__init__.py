"""The Python API for SageMaker jobs: training (``data`` upload, ``hyperparameters``, ``model_folder``, ``metrics``,
``training``, ``follow``) and Batch Transform (``transform``, ``local_transform`` against a local server, and
``batches``, the payload split and output check both share)."""
