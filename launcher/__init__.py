"""From a laptop to SageMaker with boto3 only: upload data, train, deploy, invoke, transform, clean up.

Start with ``Clients(AwsSettings(...))`` and pass it to the functions; see docs/sagemaker.md. Three packages, one
per resource, and the shared modules they stand on:

``cli/``: ``python -m launcher COMMAND``, one module per command group, each holding its commands' flags and
handlers side by side (``__init__`` joins their ``COMMANDS`` rows, builds the parser, maps errors to exit statuses):
    ``data`` validate, upload · ``train`` train, follow, stop · ``deploy`` deploy (new or in place) ·
    ``multimodel`` deploy-multi, add-model · ``invoke`` invoke, invoke-async · ``endpoints`` autoscale,
    describe, logs · ``transform`` transform, follow-transform, stop-transform · ``resources`` delete, list,
    cleanup · ``drift`` drift · ``registry`` register, approve, reject (and deploy --model-package, list
    --group) · ``pipeline`` pipeline create|start|describe; ``flags`` the flag groups several commands take;
    ``support`` what the handlers share (clients, pollers, images, the serving config from flags, the table row
    ``Command``).
``endpoints/``: the Python API for endpoints:
    ``deploy`` ServingConfig and model / endpoint config / endpoint creation · ``serverless`` every rule of
    serverless endpoints · ``asynchronous`` asynchronous endpoints · ``capture`` data capture · ``update`` an
    endpoint updated in place · ``autoscale`` Application Auto Scaling · ``invoke`` real-time requests ·
    ``async_invoke`` asynchronous requests · ``multimodel`` multi-model endpoints · ``cleanup`` deleting
    endpoints (autoscaling, configs, models) and models.
``jobs/``: the Python API for training and Batch Transform:
    ``data`` validate and upload a data folder · ``hyperparameters`` TrainConfig's fields as a job's
    HyperParameters · ``model_folder`` a local ``--model-name`` checked · ``metrics`` MetricDefinitions ·
    ``training`` start and stop training jobs · ``follow`` a training job followed to its end · ``transform``
    SageMaker Batch Transform · ``local_transform`` the same against a local server · ``batches`` payload
    splitting and line-by-line output checks.
Shared: ``aws`` (clients from one session) · ``errors`` (typed errors with their exit status) · ``checks`` (image,
role, instances, files; ``DEFAULT_INSTANCE``) · ``images`` (CPU or GPU image by instance, GPU batch sizes) ·
``placement`` (tags, VPC, KMS, network isolation) · ``names`` (unique resource names) · ``s3`` (S3 locations and
objects) · ``waiting`` (bounded polling) · ``logs`` (CloudWatch tails) · ``content_types`` (the client's codecs) ·
``inventory`` (list resources, describe an endpoint) · ``s3_cleanup`` (the S3 folders the launcher wrote) ·
``drift`` / ``drift_plot`` (captured answers against the test split, pure, and its figure) · ``registry`` (model
package groups, versions, approval, the Model Card) · ``pipeline`` (the train -> evaluate -> register Pipeline
definition, from ``jobs.training``'s and ``registry``'s own request builders).
Hyperparameters are ``training.config.TrainConfig``'s fields (see ``jobs.hyperparameters``).
"""
