# The two set-up commands: `make run` runs the main job, `make test` the tests.
# Both install libtorch when missing and share one cached build, kept outside
# the clone so that every clone of this repository reuses it.

LIBTORCH ?= $(shell bash scripts/libtorch.sh)
ifeq ($(LIBTORCH),)
$(error installing libtorch failed; see the messages above)
endif
CARGO_TARGET_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/xp/target
export LIBTORCH CARGO_TARGET_DIR

XP = $(CARGO_TARGET_DIR)/debug/xp
PIPELINE ?= pipelines/example.toml

.PHONY: run test build bench doctor

run: build
	$(XP) run $(PIPELINE)

test: build
	cargo test --locked --workspace

build:
	cargo build --locked --workspace --bins

bench:
	cargo bench --locked --profile dev --bench engine

doctor: build
	$(XP) doctor
