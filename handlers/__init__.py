"""Serving: the TorchServe handler and what it delegates to.

``ts_handler.py`` is the only module that touches TorchServe's context; ``service.py`` does the work on plain
Python values (so handler tests need no server), ``codecs.py`` maps content types to functions, and
``errors.py`` carries the HTTP status of every failure.
"""
