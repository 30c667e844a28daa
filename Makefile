# The two commands a new user needs:  make demo  (the main job on the embedded toy city)  and  make test.
PYTHON := .venv/bin/python

.PHONY: env lint test demo
env:
	bash scripts/setup_env.sh

lint: env
	$(PYTHON) -m ruff check .

test: env
	$(PYTHON) -m pytest tests -q -p no:cacheprovider

demo: env
	$(PYTHON) tools/reproduce/demo.py
