"""The Python API for SageMaker jobs: training (data, hyperparameters, metrics) and Batch Transform."""
