"""The pure task layer: records -> model inputs -> predictions -> scores.

Training and serving both call this package, so what an endpoint answers is exactly what evaluation scored.
It performs no file, network or environment I/O and never imports TorchServe. It ships inside every model
archive as a package directory next to the handler (see ``archive/build.py``), so it must import with nothing
but numpy (metrics libraries are imported lazily, only by the scoring functions).

Its modules, in layers (each imports only the layers below it):

1. plain data and parsing: ``errors``, ``fields`` (``Record``, words, boxes), ``families`` (model-family facts
   and overrides), ``spec`` (``TaskSpec``, the checkpoint's task file), ``serving_manifest``
   (``ServingManifest``, an archive's serving.json), ``serving_contract`` (the serving environment),
   ``model_config`` (what a base model's name, files and config.json must show before anything loads it);
2. shared building blocks: ``features`` (``Feature``, windows, label alignment), ``batching`` (micro-batches,
   padding, label stacking), ``decode`` and ``metrics`` (what several tasks share);
3. the task table, ``kinds/``: one module per task owning its labels, decoder and scorer (``kinds/base.py`` is
   the row's shape), and ``kinds/__init__`` (``TASKS``, ``task_kind``, ``check_spec``);
4. on top: ``records`` (validated records from rows and requests), ``encode`` and ``predict`` (the one
   prediction path).

Import each name from its module; this package re-exports nothing.
"""
