# mikeysakke top-level driver. Every target installs what is missing first (make deps),
# so `make demo` and `make test` work on a fresh Debian 12 machine as root.
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
BUILD   ?= build
ASAN    ?= build-asan
CTBUILD ?= build-ct
PREFIX  ?= /usr/local

.PHONY: all deps build test test-release test-asan ctcheck bench demo install clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The whole suite: release build, then ASan+UBSan build, then the constant-time check.
test: test-release test-asan ctcheck

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DMS_SANITIZE=ON
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS)

# Secrets are marked undefined for valgrind; any branch or index on them is an error.
ctcheck: deps
	cmake -S . -B $(CTBUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMS_CTCHECK=ON
	cmake --build $(CTBUILD) -j $(JOBS) --target ct_check
	valgrind --error-exitcode=42 --track-origins=yes --exit-on-first-error=no \
	    --suppressions=tests/ct/openssl.supp \
	    $(CTBUILD)/tests/ct_check

bench: build
	$(BUILD)/bench/ms_bench $(BENCH_ARGS)

demo: build
	sh scripts/demo.sh $(BUILD)/mikeysakke

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN) $(CTBUILD)
