# Weir: `make demo` and `make test` are the two commands; see README.md.
SHELL   := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# The Go toolchain the project builds with, fetched by the go command from
# the module proxy (go.mod's go line names it too): go1.27.3, the first
# served release without the standard library advisories govulncheck
# reports for 1.26.8. Its bin/ goes first on PATH: staticcheck and
# govulncheck ask `go list` for the language version in GOPATH mode, where
# GOTOOLCHAIN is not obeyed, and with an older go first they type-check the
# go1.27 standard library as go1.26 and fail.
export GOTOOLCHAIN := go1.27.3
TOOLCHAIN_GOROOT := $(shell PATH=/usr/local/go/bin:$$PATH GOTOOLCHAIN=$(GOTOOLCHAIN) go env GOROOT 2>/dev/null)
ifneq ($(TOOLCHAIN_GOROOT),)
export PATH := $(TOOLCHAIN_GOROOT)/bin:$(PATH)
endif
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)"
# Each fuzzer runs this long in `make test` (after its seed corpus); the
# fuzzers are run one after another, and at 10 s each they took 9 of CI's
# 30 minutes; longer runs: make fuzz FUZZTIME=5m
FUZZTIME ?= 6s
FUZZ_TARGETS := \
	./event:FuzzDecode \
	./event:FuzzAppendJSON \
	./merkle:FuzzFrontier \
	./seal:FuzzParse \
	./seal:FuzzProof \
	./seal:FuzzVerifierState \
	./gateway:FuzzLoadConfig \
	./gateway/console:FuzzParseHash \
	./gateway/console:FuzzRecord \
	./spool:FuzzParseKeys \
	./uplink:FuzzDecode \
	./uplink/collector:FuzzBatch \
	./uplink/collector:FuzzJSONLRecover \
	./uplink/collector/fleet:FuzzParseRecord \
	./uplink/collector/fleet:FuzzSites \
	./uplink/collector/ui:FuzzPageQuery \
	./uplink/pki:FuzzGatewayID \
	./uplink/pki:FuzzOpenBundle \
	./uplink/rudp:FuzzDecodeSegment \
	./uplink/rudp:FuzzSegments \
	./uplink/siem:FuzzCEF \
	./uplink/siem:FuzzLEEF \
	./uplink/siem:FuzzRFC5424 \
	./uplink/siem:FuzzECS \
	./uplink/siem:FuzzECSExport \
	./sensors/modbus:FuzzDecodeRTU \
	./sensors/modbus:FuzzDecodeTCP \
	./sensors/line:FuzzParse \
	./sensors/line:FuzzSplit \
	./sensors/modbus/poll:FuzzDecodeRegisters \
	./sensors/syslog:FuzzParse5424 \
	./sensors/syslog:FuzzParse3164 \
	./sensors/syslog:FuzzFramer \
	./sensors/audit:FuzzParseLine \
	./sensors/audit:FuzzGroup \
	./sensors/audit:FuzzDecodeNetlink \
	./sensors/audit:FuzzParsePosition \
	./sensors/integrity:FuzzDecodeEntry \
	./spool:FuzzPositions \
	./match:FuzzMatch \
	./process:FuzzDissect \
	./process:FuzzKV \
	./process:FuzzJSON \
	./process:FuzzSD \
	./process:FuzzRedact \
	./sensors/hostlog:FuzzSplitter \
	./sensors/hostlog:FuzzParsePosition \
	./ptp:FuzzSlaveHandle \
	./ptp:FuzzDecodeManagement

.PHONY: all build deps test test-arm vet lint vuln unit tour fuzz demo bench bench-parts faults fleet-load clean install cross image-smoke buildroot-check

all: build

deps:
	@scripts/deps.sh

build:
	$(GOBUILD) -o bin/weir ./cmd/weir
	$(GOBUILD) -o bin/weir-collector ./cmd/weir-collector
	$(GOBUILD) -o bin/weir-sim ./cmd/weir-sim

test: deps vet lint vuln unit tour fuzz
	@echo "make test: all checks passed"

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

lint:
	bin/tools/staticcheck ./...

# govulncheck, offline, against the database scripts/vulndb.sh builds from
# the golang.org/x/vulndb module (once per version, kept in bin/vulndb):
# fails on an advisory whose code this module reaches (exit 3); advisories
# in packages only imported or modules only required are counted, not
# failed (bin/tools/govulncheck -show verbose lists them). First the
# check's own test: a fixture module with a known advisory must be reported.
vuln: deps
	@scripts/test-vuln.sh
	@db=$$(scripts/vulndb.sh) && echo "govulncheck: database golang.org/x/vulndb@$${db##*/}" && \
		bin/tools/govulncheck -db "file://$$db" ./...

# Every test under the race detector, then the tests that skip under it:
# the spool's at full speed (churn, and the full disk on a real tmpfs), the
# built-in PTP slave against ptp4l (the detector slows only the Go side),
# and the allocation counts, which the detector's sync.Pool makes random.
unit:
	go test -race -count=1 -timeout 25m ./...
	go test -count=1 -timeout 10m -run '^(TestChurn|TestFullDiskTmpfs)$$' -v ./spool
	go test -count=1 -timeout 5m -run '^TestBuiltinAgainstPTP4L$$' -v ./ptp
	go test -count=1 -run 'AllocatesNothing$$' -v ./match ./rules

# README.md's tour, run as written in a temporary directory (the blocks
# fenced ```sh tour; scripts/readme-tour.sh says what it substitutes).
tour: deps
	@scripts/readme-tour.sh

# Minimizing a new interesting input counts against -fuzztime; with the
# default 60 s a long input made a 10 s run end in "context deadline exceeded".
# Even with 10x a run now and then ends in that error at its deadline
# (seen on sensors/audit FuzzGroup, and on sensors/modbus/poll
# FuzzDecodeRegisters with no new input to minimize): the fuzzer's own
# error, with no failing input written. Such a run is repeated once, and
# its output, which says FAIL, is not shown unless the repeat fails too; a
# real failure ("Failing input written") is never repeated.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		for try in 1 2; do \
			echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
			rc=0; out=$$(go test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10x $$pkg 2>&1) || rc=$$?; \
			if [ $$rc -eq 0 ]; then echo "$$out"; break; fi; \
			if [ $$try -eq 1 ] && ! grep -q "Failing input written" <<<"$$out" && grep -q "context deadline exceeded" <<<"$$out"; then \
				first=$$out; \
				echo "fuzz: $$fn stopped on the fuzzer's own deadline error, no failing input; once more"; continue; \
			fi; \
			[ $$try -eq 2 ] && printf '%s\n(first run:)\n%s\n' "$$out" "$$first" || echo "$$out"; \
			exit $$rc; \
		done; \
	done

# Unit tests cross-built for arm64 and armv7 and run under qemu-user
# (-test.short); scripts/test-arm.sh says how to pick an architecture or package.
# Then the spool's churn test on armv7 (about 5 minutes under qemu): it
# compacts hundreds of tables, which is where Badger's allocator breaks on
# 32-bit unless the spool's options avoid it.
test-arm:
	@scripts/deps.sh arm
	@scripts/test-arm.sh
	@ARM_LONG=1 ARM_PKG_TIMEOUT=20m ARM_TEST_FLAGS='-test.run ^TestChurn$$ -test.v' scripts/test-arm.sh armv7 ./spool

demo: deps build
	@scripts/demo.sh

# Static linux/arm64 and linux/arm (GOARM=7) firmware in bin/cross, as the
# Buildroot package builds it, with their sizes; then each built again
# from a copy of the tree with an empty build cache, which must be
# byte-identical (scripts/cross.sh; about 2 minutes on 2 cores).
cross:
	@scripts/cross.sh --check

# The firmware booted on an emulated arm64 board (QEMU virt, cortex-a53)
# from Debian's arm64 kernel and BusyBox with buildroot/'s overlay and init
# scripts: a technician's checks over the serial console, then CUTS power
# cuts at random moments (SEED repeats a run's), each followed by a boot
# from the same data disk, and the count at the collector: records
# written, acknowledged, lost, duplicated (buildroot/README.md). About 3
# minutes with 10 cuts.
CUTS ?= 10
image-smoke:
	@CUTS=$(CUTS) scripts/image-smoke.sh

# The BR2_EXTERNAL tree against a Buildroot checkout (no download, no
# build): make buildroot-check BUILDROOT=/path/to/buildroot
buildroot-check:
	@test -n "$(BUILDROOT)" || { echo "buildroot-check: BUILDROOT=/path/to/buildroot is needed (buildroot/README.md says how to get one)" >&2; exit 2; }
	@scripts/buildroot-check.sh "$(BUILDROOT)"

# The spool's fault campaign with the real binaries (scripts/faults.sh):
# full disk on a 64 MiB tmpfs (as root), each kind of damaged spool file,
# SIGKILL while a spool is moved aside; a table of what reached the
# collector. Not part of make test: it takes a few minutes.
faults: deps build
	@scripts/faults.sh

# The fleet page's load check: 1,000 simulated gateways into a collector
# without the page and one with it; prints the memory the page adds and
# Chromium's first paint of the fleet and gateway pages (about 2 minutes).
fleet-load: deps
	WEIR_FLEET_LOAD=1 go test -count=1 -timeout 15m -run '^TestFleetPageLoad$$' -v ./cmd/weir-collector

# make bench: under 10 minutes on 2 cores. The record path's Go
# benchmarks (-count 3: each line's spread is its noise; among them the
# rules' and each processor's cost per record and the bytes a sample
# workload's chain saves, the Merkle leaf's cost, each SIEM format's
# encoding, the collector's cost per record of a batch), weir-bench's
# spool and tail runs, short, then the end-to-end run side by side with
# rsyslog and syslog-ng (weir-bench e2e; bench/README.md says what is
# measured and how each peer is configured), whose table is printed and
# written to bench/results/e2e.md and e2e.json. BENCH_BACKLOG is the
# drained backlog in lines (200,000 by default: 1,000,000 take
# about three times as long per system), BENCH_RUNS the flat-out runs,
# BENCH_SYSTEMS the columns.
BENCH_BACKLOG ?= 200000
BENCH_RUNS    ?= 3
BENCH_SYSTEMS ?= weir,weir-nozstd,weir-dtls,rsyslog,rsyslog-sync,syslog-ng
BENCH_PKGS    ?= ./event ./spool ./sensors/hostlog ./rules ./match ./process ./merkle ./uplink/siem
bench: deps build
	$(GOBUILD) -o bin/weir-bench ./cmd/weir-bench
	@mkdir -p bench/results
	go test -run '^$$' -bench . -benchmem -count 3 -benchtime 200ms $(BENCH_PKGS) | tee bench/results/micro.txt
	go test -run '^$$' -bench Loopback -count 3 -benchtime 50000x ./uplink/sender | tee -a bench/results/micro.txt
	go test -run '^$$' -bench Accept -benchmem -count 3 ./uplink/collector | tee -a bench/results/micro.txt
	bin/weir-bench spool --seconds 1 --skip-rss
	bin/weir-bench tail --seconds 2 --runs 3
	bin/weir-bench e2e --backlog $(BENCH_BACKLOG) --runs $(BENCH_RUNS) --systems $(BENCH_SYSTEMS) --results bench/results

# The longer load runs of each part: every package's Go benchmarks (among
# them ptp's Now() cost and, as root, the built-in PTP slave's offsets
# beside a ptp4l slave on a namespace link; the rules' cost per record,
# rules BenchmarkObserve; each SIEM format's encoding cost per record,
# uplink/siem BenchmarkEncode; the JetStream head-end's CPU, stream bytes
# and RSS per record on a 3-node cluster, uplink/collector
# BenchmarkJetStreamSink), then the spool's: durable append rates,
# read+ack, and the RSS of a process holding a 1 GiB backlog (small
# profile); lines/s tailed into the spool; uplink goodput for tls and dtls
# across a lossy namespace link (as root).
bench-parts: deps
	go test -run '^$$' -bench . -benchmem ./...
	$(GOBUILD) -o bin/weir-bench ./cmd/weir-bench
	bin/weir-bench spool
	bin/weir-bench tail
	bin/weir-bench link

# make install DESTDIR=<image root>: the firmware, its udev rule and its
# service files (INIT=systemd, the default: the unit and its sysusers.d
# user; INIT=busybox: the /etc/init.d script for Buildroot images), with
# ExecStart and the script's DAEMON pointing at $(PREFIX)/bin/weir.
PREFIX ?= /usr
INIT   ?= systemd
install: build
	@case "$(INIT)" in systemd|busybox) ;; *) echo "install: INIT=$(INIT) is not systemd or busybox" >&2; exit 2;; esac
	install -D -m 0755 bin/weir $(DESTDIR)$(PREFIX)/bin/weir
	install -D -m 0644 dist/udev/90-weir.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/90-weir.rules
	@if [ "$(INIT)" = systemd ]; then \
		set -x; \
		install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d; \
		sed 's|/usr/bin/weir|$(PREFIX)/bin/weir|' dist/systemd/weir.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/weir.service; \
		chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/weir.service; \
		install -m 0644 dist/systemd/weir.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/weir.conf; \
	else \
		set -x; \
		install -d $(DESTDIR)/etc/init.d; \
		sed 's|/usr/bin/weir|$(PREFIX)/bin/weir|' dist/busybox/S95weir > $(DESTDIR)/etc/init.d/S95weir; \
		chmod 0755 $(DESTDIR)/etc/init.d/S95weir; \
	fi

# Also what a crashed or KEEP=1 `make demo` left (/tmp/weir-demo.* and
# weir-demo-* network namespaces whose demo is no longer running) and what
# a killed `make tour` left (/tmp/weir-tour.*).
clean:
	rm -rf bin weir-data demo-out
	@scripts/demo.sh clean
	@scripts/readme-tour.sh clean
