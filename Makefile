# The two commands: `make demo` (train + open-vocabulary test on the embedded dataset) and
# `make test`. Both set up .venv first (`make env`, idempotent; the first run builds mmcv).
VENV ?= .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.ovdense-env-ok
PYTEST_ARGS ?=

.PHONY: env test demo demo-control bench gpu-check clean-env

env: $(ENV_STAMP)

$(ENV_STAMP): setup.py tools/setup_env.sh tools/build_mmcv.sh
	bash tools/setup_env.sh
	touch $@

# One pytest worker per core, at most 4 (TEST_WORKERS=1 runs in one process); each test file
# stays on one worker, so its module fixtures are made once.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))

test: env
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# TASKS=det, TASKS=seg or TASKS=action runs one task, TASKS=det,seg two (default: all three)
DEMO_TASKS = $(if $(TASKS),--tasks $(TASKS),)

demo: env
	$(PY) tools/run_demo.py $(DEMO_TASKS)

demo-control: env
	$(PY) tools/run_demo.py --control $(DEMO_TASKS)

# SIZE=realistic: ICARSwin-T Mask R-CNN at 800x1333 and UperNet at 512x512 (~15 min)
BENCH_SIZE = $(if $(SIZE),--size $(SIZE),)

bench: env
	$(PY) tools/benchmark.py $(BENCH_SIZE)

# On a CUDA machine: mmcv CUDA ops vs CPU, demo training in fp32 and AMP, bench on the GPU.
gpu-check: env
	PYTHON=$(PY) bash tools/gpu_check.sh

clean-env:
	rm -rf $(VENV)
