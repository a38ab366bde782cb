"""Start-up code for TorchServe workers (see sitecustomize.py); nothing here is imported by our packages."""
