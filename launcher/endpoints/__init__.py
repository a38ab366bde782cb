"""The Python API for SageMaker endpoints: deploy, the endpoint kinds, update, autoscale, invoke, delete."""
