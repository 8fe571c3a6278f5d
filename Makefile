# Single entry point. Each target installs the pinned stack into .venv/ on first use.
.PHONY: install demo test test-all bench clean

install:
	@bash scripts/bootstrap.sh

demo: install
	.venv/bin/recsys demo

test: install
	.venv/bin/python -m pytest

test-all: install
	.venv/bin/python -m pytest -m "slow or not slow"

clean:
	rm -rf .venv demo-out .pytest_cache
