# Two commands for a newcomer:  make install  &&  make test
# One package:                  make install PKG=cd3d && make test PKG=cd3d

PACKAGES := groupexp-da instance-nerf cd3d spheroid-rank bus-classify
PKG      ?= $(PACKAGES)
PYTHON   ?= 3.11
MARK     ?= not slow and not gpu
OUT      ?= demo

# uv from PATH, else a private copy bootstrapped into .tools/ with the system python.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
TOOLS_PY := $(CURDIR)/.venv/bin/python

.PHONY: install test lint demo bench doctor clean uv tools-env

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/python -m pip install --quiet "uv>=0.8.4,<1"

uv: $(UV)

# Environment for the cross-package tests and tools (pytest, ruff, actionlint; pinned).
tools-env: uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .venv
	$(UV) pip install --quiet --python $(TOOLS_PY) -r tools/requirements.txt

install: uv tools-env
	@set -e; for p in $(PKG); do \
	  echo "== install $$p"; start=$$(date +%s); \
	  (cd packages/$$p && $(UV) sync --frozen --quiet --python $(PYTHON)); \
	  echo "== $$p installed in $$(( $$(date +%s) - start )) s"; \
	done

test:
	@failed=""; for p in $(PKG); do \
	  echo "== test $$p"; start=$$(date +%s); \
	  (cd packages/$$p && .venv/bin/python -m pytest -c ../../pyproject.toml --rootdir . -m "$(MARK)" tests) \
	    || failed="$$failed $$p"; \
	  echo "== $$p tested in $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ -n "$$failed" ]; then echo "== FAILED:$$failed"; exit 1; fi
ifeq ($(PKG),$(PACKAGES))
	@echo "== cross-package tests"
	$(TOOLS_PY) -m pytest -c pyproject.toml --rootdir . -m "$(MARK)" tests
endif

lint:
	$(TOOLS_PY) -m ruff check .
	$(TOOLS_PY) -m ruff format --check .

demo:
	@set -e; for p in $(PKG); do \
	  if packages/$$p/.venv/bin/$$p --help 2>/dev/null | grep -qw demo; then \
	    echo "== demo $$p"; packages/$$p/.venv/bin/$$p demo --out $(OUT)/$$p; \
	  else echo "== demo $$p: this package has no 'demo' command yet"; fi; \
	done

bench:
	$(TOOLS_PY) tools/bench.py --packages $(PKG) --out bench

doctor:
	$(TOOLS_PY) tools/doctor.py --packages $(PKG)

clean:
	rm -rf packages/*/.venv .venv .tools bench
