# Deskcast. `make run` and `make test` are all a newcomer needs.
GO        ?= go
BIN       := bin/deskcast
PKGS      := ./...
# portaudio passes an integer stream id as unsafe.Pointer (portaudio.go, OpenStream), which -race's
# checkptr instrumentation kills the process for; the same class as gordonklaus/portaudio#57.
# Checkptr stays on for every other package.
RACEFLAGS := -race -gcflags=github.com/gordonklaus/portaudio=-d=checkptr=0
# -p 1: one package at a time, so the timing-sensitive end-to-end tests
# (sound, 100 stalled clients) do not share the 2 cores with other packages.
TESTFLAGS ?= $(RACEFLAGS) -p 1 -count=1 -timeout 20m
FUZZTIME  ?= 5m
export GOFLAGS := -buildvcs=false

.PHONY: all deps test-deps build run test fuzz fuzz-short bench package vet clean

all: build

deps:
	@bash scripts/deps.sh build

test-deps:
	@bash scripts/deps.sh test

build: deps
	$(GO) build -o $(BIN) .

## run: install what is missing, build, start the app (headless when there is no display)
run: build
	./$(BIN) $(ARGS)

## test: install test dependencies, start D-Bus and PulseAudio (tests start their own Xvfb), run every test
test: test-deps
	$(GO) vet $(PKGS)
	bash scripts/testenv.sh $(GO) test $(TESTFLAGS) $(PKGS)
	$(MAKE) fuzz-short

## fuzz: run each fuzz target for FUZZTIME (5m), one after another
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadCredentials$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzReadPINForm$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzViewerID$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzParseControl$$' -fuzztime $(FUZZTIME) ./web/

## fuzz-short: each fuzz target for 20 s, the short run in make test
fuzz-short:
	$(MAKE) fuzz FUZZTIME=20s

## bench: figures for a 1920x1080 screen (fps, latency, CPU, RSS, bandwidth); not a pass/fail test
bench: test-deps
	bash scripts/testenv.sh $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./e2e/
	bash scripts/testenv.sh $(GO) test -run '^$$' -bench . -benchtime 2s ./capture/ ./codec/jpeg/

## package: the Linux package (dist/Deskcast.tar.xz: binary, icon, .desktop file) through the fyne tool
package: deps
	mkdir -p dist
	$(GO) tool fyne package -os linux -release
	mv -f Deskcast.tar.xz dist/
	@echo "dist/Deskcast.tar.xz: tar -xJf it, then 'sudo make install' inside installs it with its menu entry"

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin dist
