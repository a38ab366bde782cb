"""From a laptop to SageMaker with boto3 only: upload data, train, deploy, invoke, transform, clean up.

Modules, one concern each: ``aws`` (clients), ``data`` (validate + upload), ``training`` / ``follow`` (jobs),
``deploy`` / ``multimodel`` (endpoints), ``invoke``, ``transform`` (SageMaker Batch Transform),
``local_transform`` (the same against a local server), ``cleanup``; ``checks`` holds the checks several configs
share. The command line is one table, ``commands.COMMANDS`` (help, flags from ``arguments``, handler), read by
``cli``. Hyperparameters are ``training.config.TrainConfig``'s fields (see ``hyperparameters``).
Start with ``Clients(AwsSettings(...))`` and pass it to the functions; see docs/sagemaker.md.
"""
