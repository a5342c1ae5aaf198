# Two commands on a fresh machine (see README):  make demo   and   make test
VENV    ?= .venv
PYTHON  ?= python3
DATA    ?= ../shared/data/busi
BIN      = $(VENV)/bin

.PHONY: install demo test reliability reinstall
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e ".[dev,app,weights]"
	rm -rf medcam.egg-info  # build leftover; from the source folder it would shadow the installed entry points
	touch $@

demo: install
	$(BIN)/medcam demo --data $(DATA)

test: install
	$(BIN)/python -m pytest -q

# the bad-input suite alone (docs/guarantees.md); `make test` runs it too
reliability: install
	$(BIN)/python -m pytest tests/reliability -q

# after editing entry points in pyproject.toml (metadata only, no downloads)
reinstall:
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	rm -rf medcam.egg-info
