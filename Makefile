# The two set-up commands: `make demo` (the main job on a sample photo) and `make test` (the tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= ../shared/samples/street_london_bus.jpg

.PHONY: install demo test test-fast lint

$(BIN)/img2maya: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[seed,dev,hf]"
	touch $@

install: $(BIN)/img2maya

demo: install
	IMG2MAYA_MODELS=$${IMG2MAYA_MODELS:-../shared/models} $(BIN)/img2maya scene $(SAMPLE) -o out/demo.usda

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The quick loop while editing: no test marked slow, none that needs ../shared (models, samples).
test-fast: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not slow and not shared"
