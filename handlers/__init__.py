"""Serving: the TorchServe handler and what it delegates to.

- ``ts_handler.py``: the only module that touches TorchServe's context; it reads the serving environment once
  (``tasks.serving_contract``) and hands each request of a batch to the service;
- ``service.py``: the work on plain Python values (so handler tests need no server): requests in, one response
  per request out, the valid records of a batch through one ``tasks.predict`` call;
- ``codecs.py``: content types as a table from media type to decoder and encoder;
- ``errors.py``: the typed errors, each carrying its HTTP status (4xx only where the caller is at fault; 507 for
  running out of memory, CUDA's included).

The model itself is loaded through ``runtimes.load``; this package never imports ``training`` or ``archive``,
which do not ship inside a model archive.
"""
