# kssgan — one command trains, one command tests. Each creates .venv and installs what it needs.
#   make train                       # built-in synthetic demo (no real face), a few minutes on CPU
#   make train DATASET=yale          # experiments/base.yaml + experiments/<name>.yaml; ARGS="--trainer.max_steps 60"
#   make train PROFILE=debug         # compose experiments/debug.yaml after it (2 batches, no loggers)
#   make test                        # the whole suite (shared-data tests skip without ../shared)
#   make prepare DATASET=folder DATA_DIR=../shared/datasets/yale
#   make evaluate CKPT=... DATASET=...   make deidentify CKPT=... INPUT=... OUTPUT=...
#   make sweep SWEEP=pso DATASET=demo TRIALS=4     make bench     make lint
#
# TORCH selects the torch build: the default is the CPU wheel; for a GPU box use e.g.
#   make train TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"

PYTHON  ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
EXTRAS  ?= all
DATASET ?= demo
ARGS    ?=
PROFILE ?=
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.kssgan-installed

.PHONY: install train test test-fast prepare evaluate deidentify export sweep bench lint format clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# one resolver run: torch pinned to the CPU wheel (or $(TORCH)) together with the package
	$(BIN)/python -m pip install $(TORCH) -e ".[$(EXTRAS)]"
	# these declare dependencies that would pull a CUDA torch / the non-headless OpenCV; mediapipe's
	# wheel is there only for its face-mesh model file (kssgan.faces.mesh; never imported)
	$(BIN)/python -m pip install --no-deps gan-face-generate insightface mediapipe==0.10.14
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	@test -f experiments/$(DATASET).yaml -a "$(DATASET)" != base -a "$(DATASET)" != debug || { echo "make train: no experiment config experiments/$(DATASET).yaml; available: $$(ls experiments/*.yaml | xargs -n1 basename | sed 's/.yaml//' | grep -vx 'base\|debug' | tr '\n' ' ')"; exit 2; }
	$(BIN)/kssgan fit --config experiments/base.yaml --config experiments/$(DATASET).yaml $(if $(PROFILE),--config experiments/$(PROFILE).yaml) $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

prepare: $(STAMP)
	$(BIN)/kssgan prepare --dataset $(DATASET) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(ARGS)

evaluate: $(STAMP)
	$(BIN)/kssgan evaluate $(if $(CKPT),--ckpt $(CKPT)) $(if $(ABLATION),--ablation-ckpt $(ABLATION)) --dataset $(DATASET) $(ARGS)

deidentify: $(STAMP)
	$(BIN)/kssgan deidentify --ckpt $(CKPT) --input $(INPUT) --output $(OUTPUT) $(ARGS)

export: $(STAMP)
	$(BIN)/kssgan export --ckpt $(CKPT) $(ARGS)

sweep: $(STAMP)
	$(BIN)/kssgan sweep --sweep sweeps/$(or $(SWEEP),random).yaml --dataset $(DATASET) $(if $(TRIALS),--trials $(TRIALS)) $(ARGS)

bench: $(STAMP)
	$(BIN)/kssgan bench $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests docs
	$(BIN)/ruff format --check src tests docs

format: $(STAMP)
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean:
	rm -rf outputs .pytest_cache .ruff_cache
