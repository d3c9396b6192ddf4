# mikeysakke top-level driver. Every target installs what is missing first (make deps;
# `make build` only what compiling needs), so `make demo` and `make test` work on a fresh
# Debian 12 machine as root, and need no root once the packages are there.
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
BUILD   ?= build
ASAN    ?= build-asan
CTBUILD ?= build-ct
FUZZBUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
PREFIX  ?= /usr/local

.PHONY: all deps deps-build build test test-release test-asan ctcheck fuzz bench bench-wolfssl demo install clean

all: build

deps:
	@sh scripts/deps.sh

deps-build:
	@sh scripts/deps.sh --build

$(BUILD)/CMakeCache.txt: | deps-build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: deps-build $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The whole suite: release build, then ASan+UBSan build, then the constant-time check,
# then a bounded fuzzing run.
test: test-release test-asan ctcheck fuzz

test-release: deps build
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

# libFuzzer under ASan + UBSan (clang): each target runs FUZZ_SECONDS on a scratch copy
# of its seed corpus, so new inputs never land in fuzz/corpus; a crash fails the run and
# leaves the input in $(FUZZBUILD)/crash-<target>-*.
FUZZ_TARGETS = mikey_parse:mikey sdp_key_mgmt:sdp key_package:package kms_request:request \
               capture:capture audit:audit

fuzz: deps
	CC=clang cmake -S . -B $(FUZZBUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMS_FUZZ=ON \
	    -DBUILD_TESTING=OFF
	cmake --build $(FUZZBUILD) -j $(JOBS) --target fuzz_mikey_parse fuzz_sdp_key_mgmt fuzz_key_package fuzz_kms_request \
	    fuzz_capture fuzz_audit
	@set -e; for t in $(FUZZ_TARGETS); do \
	    name=$${t%%:*}; corpus=$${t##*:}; work=$(FUZZBUILD)/corpus-$$corpus; \
	    rm -rf $$work; mkdir -p $$work; cp fuzz/corpus/$$corpus/* $$work/; \
	    echo "fuzz_$$name: $(FUZZ_SECONDS) s on a copy of fuzz/corpus/$$corpus"; \
	    $(FUZZBUILD)/fuzz/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZBUILD)/crash-$$name- $$work; \
	done

# The primitives and batch issuance (ms_bench), then serving throughput: keyprov responses
# per second of kms serve and dist serve over keep-alive TLS on loopback (wrk), then
# (without --json) the comparison with wolfSSL where it is installed. --json and
# --quick in BENCH_ARGS apply to the first two; SERVE_BENCH_ARGS adds e.g. --seconds 30.
bench: deps build
	$(BUILD)/bench/ms_bench $(BENCH_ARGS)
	bash bench/serve_bench.sh $(filter --json --quick,$(BENCH_ARGS)) $(SERVE_BENCH_ARGS) $(BUILD)/mikeysakke
	bash bench/call_bench.sh $(filter --json --quick,$(BENCH_ARGS)) $(BUILD)/mikeysakke
	$(BUILD)/bench/ms_group_bench $(filter --json --quick,$(BENCH_ARGS))
	$(BUILD)/bench/ms_conference_bench $(filter --json --quick,$(BENCH_ARGS))
	$(BUILD)/bench/ms_threshold_bench $(filter --quick,$(BENCH_ARGS))
	@if [ -z "$(filter --json,$(BENCH_ARGS))" ]; then \
	    bash bench/wolfssl_compare.sh $(WOLFSSL_COMPARE_ARGS) $(BUILD)/bench/ms_bench; fi

# Our ECCSI and SAKKE against wolfSSL's, same run, side by side (skipped with a message
# when wolfSSL or its ECCSI/SAKKE are missing; wolfSSL is never linked into anything
# else). WOLFSSL_COMPARE_ARGS: --rounds N (default 5), --markdown.
bench-wolfssl: deps build
	bash bench/wolfssl_compare.sh $(WOLFSSL_COMPARE_ARGS) $(BUILD)/bench/ms_bench

demo: build
	sh scripts/demo.sh $(BUILD)/mikeysakke

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN) $(CTBUILD) $(FUZZBUILD)
