# Keel's two promises: `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
# PyTorch's CPU build: from this machine's wheel folder when it has one, else PyTorch's CPU index.
TORCH_SOURCE := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,\
	--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)

.PHONY: demo test test-all check fmt lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"

# Exact versions from the lock file, then Keel itself in editable mode. Bytecode is compiled at
# install time: with PYTHONDONTWRITEBYTECODE set, every import would otherwise recompile
# (importing SQLAlchemy alone then takes over a second).
$(STAMP): requirements/lock.txt requirements/torch.txt pyproject.toml | $(UV)
	$(UV) pip sync -q --compile-bytecode --python $(BIN)/python requirements/lock.txt
	$(UV) pip install -q --compile-bytecode --python $(BIN)/python --no-deps \
		$(TORCH_SOURCE) -r requirements/torch.txt
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

check: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check
	$(BIN)/pytest -n 2 --dist loadgroup

# Unbounded slow/load tests too.
test-all: check
	KEEL_SLOW=1 $(BIN)/pytest -n 2 --dist loadgroup

fmt: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

# Re-resolve pinned versions after changing dependencies in pyproject.toml.
lock: | $(UV)
	$(UV) pip compile -q pyproject.toml --extra dev --extra s3 --extra sklearn --extra models \
		--python-version 3.11 -o requirements/lock.txt

bench: $(STAMP)
	$(BIN)/python benchmarks/tracking.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache
