"""Interchangeable runtimes behind one interface: padded numpy inputs by name -> numpy logits.

Encoding and decoding stay in ``tasks``, unaware of which runtime ran, so one parity test covers them all.

Its modules:

- ``torch_runtime``: the checkpoint's model through transformers (and the one place a checkpoint directory
  becomes a tokenizer and a model), ``TorchRunner`` and ``place`` (the model on a GPU, fp16 behind its gate);
- ``onnx_runtime``: the archive's ONNX graph through ONNX Runtime (``OnnxRunner``), and the graph saved after ONNX
  Runtime's own optimisations;
- ``tokenizer``: the serving tokenizer over the archive's ``tokenizer.json`` with the ``tokenizers`` library alone;
- ``word_start``: how a tokenizer marks the start of a word, read from its own pre-tokenizer (training and serving);
- ``checkpoint``: the checks a checkpoint or archive directory passes before it is served, and reading and
  writing its ``serving.json`` (``tasks.serving_manifest``);
- ``device``: where a worker serves, with which runtime and in which precision (``ServePlan``), decided once;
- ``load``: an archive or checkpoint -> tokenizer, runner and ``ServePlan``, the one load path serving uses;
- ``parity``: the comparison both parity gates run (ONNX against torch at archive time, fp16 against fp32 on a
  worker's GPU) and the check set an archive carries for the second;
- ``model_source``: whether a model a user names can be fine-tuned or archived, checked before its weights load.

Engines are imported when a runner or tokenizer is made, never at import time. A worker serving an ONNX archive
imports onnxruntime, tokenizers and numpy, never torch or transformers (``tests/model/test_lean_serving.py``), unless
the archive lacks its serving tokenizer (made before there was one): then the tokenizer comes from transformers,
which imports torch, and the log says so.
"""
