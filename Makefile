# The two set-up commands: `make run` runs the main job, `make test` the tests.
# Both install libtorch when missing and share one build. Compiled
# dependencies live outside the clone, in cargo's build-dir under
# ~/.cache/xp/build/, one per clone path: cargo names a workspace's own
# artifacts by paths relative to the workspace, so two clones sharing one
# build-dir could pick up each other's test binaries. A later clone at the
# same path, such as a CI checkout, reuses the compiled dependencies; the
# final binaries stay in the clone's `target/`.

LIBTORCH ?= $(shell bash scripts/libtorch.sh)
ifeq ($(LIBTORCH),)
$(error installing libtorch failed; see the messages above)
endif
CLONE_ID := $(shell printf %s "$(CURDIR)" | sha256sum | cut -c1-16)
CARGO_BUILD_BUILD_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/xp/build/$(CLONE_ID)
CARGO_TARGET_DIR ?= $(CURDIR)/target
export LIBTORCH CARGO_BUILD_BUILD_DIR CARGO_TARGET_DIR

XP = $(CARGO_TARGET_DIR)/debug/xp
PIPELINE ?= pipelines/tutorials.toml
PROFILE ?= quick
# The download mirror that xp searches by default; see scripts/mirror.sh.
DISTDIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/xp/distdir

.PHONY: run test build bench bench-slurm doctor

run: build
	bash scripts/mirror.sh $(DISTDIR) || echo "xp: could not fill the mirror $(DISTDIR); downloads will use the network"
	$(XP) run $(PIPELINE) --profile $(PROFILE) --distdir $(DISTDIR)

test: build
	cargo test --locked --workspace

build:
	cargo build --locked --workspace --bins

bench:
	cargo bench --locked --profile dev --bench engine

# Starts the same one-node Slurm cluster as the tests; needs root.
bench-slurm:
	cargo bench --locked --workspace --profile dev --bench slurm

doctor: build
	$(XP) doctor
