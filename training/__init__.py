"""Fine-tuning on the SageMaker training contract. ``python -m training`` is the command line."""
