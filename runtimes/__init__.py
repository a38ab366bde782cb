"""Interchangeable runtimes behind one interface: padded numpy inputs by name -> numpy logits.

Encoding and decoding stay in ``tasks``, unaware of which runtime ran, so one parity test covers them all.
Both modules import their engine lazily: an archive that runs ONNX Runtime still imports torch only if asked.
"""
