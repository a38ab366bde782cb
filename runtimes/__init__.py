"""Interchangeable runtimes behind one interface: padded numpy inputs by name -> numpy logits.

Encoding and decoding stay in ``tasks``, unaware of which runtime ran, so one parity test covers them all.

- ``torch_runtime``: the checkpoint's model through transformers (and the one place a checkpoint directory
  becomes a tokenizer and a model);
- ``onnx_runtime``: the archive's ONNX graph through ONNX Runtime;
- ``tokenizer``: the serving tokenizer over the archive's ``tokenizer.json`` with the ``tokenizers`` library alone;
- ``checkpoint``: the checks a checkpoint or archive directory passes before it is served.

Engines are imported when a runner or tokenizer is made, never at import time. A worker serving an ONNX archive
imports onnxruntime, tokenizers and numpy, never torch or transformers (``tests/model/test_lean_serving.py``), unless
the archive lacks its serving tokenizer (made before there was one): then the tokenizer comes from transformers,
which imports torch, and the log says so.
"""
