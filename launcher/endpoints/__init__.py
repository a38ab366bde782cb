"""The Python API for SageMaker endpoints, one module per concern: ``deploy`` (ServingConfig; model, endpoint
config and endpoint), the endpoint kinds ``serverless`` (every serverless rule), ``asynchronous`` and ``capture``
(data capture), ``update`` (in place), ``autoscale``, ``invoke`` and ``async_invoke`` (the client's side),
``multimodel`` and ``cleanup`` (deleting endpoints and models)."""
