# Deskcast. `make run` and `make test` are all a newcomer needs; `make check` is the quick one for every change.
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
# The packages that need no cgo, vetted for Windows and macOS too (the others need cgo for the screen
# grabber, portaudio or the GUI, so a cross vet without a cross C toolchain cannot type-check them).
CROSS_PKGS := ./access/ ./assets/ ./fanout/ ./input/ ./internal/termqr/ ./internal/testenv/ ./media/ ./pipeline/ ./version/ ./web/ ./codec/jpeg/ ./codec/h264/ ./codec/vp8/ ./codec/opus/ ./rtc/ ./internal/whepclient/
# The fast tier's tests: every package but those whose tests need an X server, a browser or PulseAudio
# (DEVICE_PKGS). A new package is in unless it is named there. Worked out only when a target uses it.
DEVICE_PKGS := e2e app capture capture/audio input
UNIT_PKGS   = $(shell $(GO) list $(PKGS) | grep -v -E '/($(subst $() ,|,$(DEVICE_PKGS)))$$')

# --version: the release from FyneApp.toml and the commit from git, set with -ldflags -X. The Makefile
# asks git itself because cmd/go's own stamping (vcs.revision in the build info, the fallback for a
# plain go build) finds no repository in a git worktree: it looks for a .git directory, and a worktree
# has a .git file.
VERSION   := $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
COMMIT    := $(shell git rev-parse HEAD 2>/dev/null)
MODIFIED  := $(if $(COMMIT),$(if $(shell git status --porcelain 2>/dev/null | head -1),true))
XFLAGS    := github.com/deskcast/deskcast/version.Version=$(VERSION) \
             github.com/deskcast/deskcast/version.revision=$(COMMIT) \
             github.com/deskcast/deskcast/version.modified=$(MODIFIED)
LDFLAGS   := $(addprefix -X=,$(XFLAGS))
# When git cannot read this checkout, such as one owned by another user (git's "dubious ownership"
# check: a CI container running as root over the runner's checkout), every go build of the main
# package, the e2e tests' among them, stops with "error obtaining VCS status: exit status 128";
# this tree is built without VCS stamping then. Without a .git at all (a source archive) it changes
# nothing: go build stamps nothing there either.
ifeq ($(COMMIT),)
export GOFLAGS := $(strip $(shell $(GO) env GOFLAGS) -buildvcs=false)
endif

.PHONY: all help deps test-deps mediamtx build run lint check test fuzz fuzz-short bench package vet clean

all: build

## help: list these targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

deps:
	@bash scripts/deps.sh build

test-deps:
	@bash scripts/deps.sh test

## mediamtx: build MediaMTX once for the WHIP tests (scripts/mediamtx.sh, cached in ~/.cache/deskcast)
# Before the tests rather than inside them: a cold build takes minutes, more than check's -timeout 5m
# leaves, and internal/testenv's TestMediaMTX is in check's packages.
mediamtx:
	@GO=$(GO) bash scripts/mediamtx.sh >/dev/null

## build: install what is missing, build bin/deskcast (with its version and commit)
build: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

## run: install what is missing, build, start the app (headless when there is no display)
run: build
	./$(BIN) $(ARGS)

## lint: gofmt, go vet, go mod tidy, go vet for Windows and macOS of CROSS_PKGS, staticcheck
lint: deps
	@files=$$("$$($(GO) env GOROOT)/bin/gofmt" -l .); if [ -n "$$files" ]; then \
	  echo "gofmt: not formatted (run gofmt -w on them):"; echo "$$files"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	GOOS=windows CGO_ENABLED=0 $(GO) vet $(CROSS_PKGS)
	GOOS=darwin CGO_ENABLED=0 $(GO) vet $(CROSS_PKGS)
	$(GO) tool staticcheck $(PKGS)

## check: the fast tier for every change: lint, MediaMTX (built once), then the unit tests that need no X, browser or sound
check: lint mediamtx
	$(GO) test $(RACEFLAGS) -count=1 -timeout 5m $(UNIT_PKGS)

## test: lint, install test dependencies, build MediaMTX, start D-Bus and PulseAudio (tests start their own Xvfb), run every test
test: lint test-deps mediamtx
	bash scripts/testenv.sh $(GO) test $(TESTFLAGS) $(PKGS)
	$(MAKE) fuzz-short

## fuzz: run each fuzz target for FUZZTIME (5m), one after another
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadCredentials$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzReadPINForm$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzViewerID$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzParseControl$$' -fuzztime $(FUZZTIME) ./web/
	$(GO) test -run '^$$' -fuzz '^FuzzWHEPOffer$$' -fuzztime $(FUZZTIME) ./rtc/
	$(GO) test -run '^$$' -fuzz '^FuzzICELinks$$' -fuzztime $(FUZZTIME) ./rtc/

## fuzz-short: each fuzz target for 20 s, the short run in make test
fuzz-short:
	$(MAKE) fuzz FUZZTIME=20s

## bench: figures for a 1920x1080 screen (fps, latency, CPU, RSS, bandwidth; MJPEG and WebRTC side by side
##        in network namespaces, which need root); not a pass/fail test
bench: test-deps
	bash scripts/testenv.sh $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./e2e/
	bash scripts/testenv.sh $(GO) test -run '^$$' -bench . -benchtime 2s ./capture/ ./codec/jpeg/

## package: the Linux package (dist/Deskcast.tar.xz: binary, icon, .desktop file) through the fyne tool
# fyne package takes no -ldflags of its own; it passes the -ldflags= entries of GOFLAGS to go build.
package: deps
	mkdir -p dist
	GOFLAGS='$(strip $(shell $(GO) env GOFLAGS) $(addprefix -ldflags=-X=,$(XFLAGS)))' $(GO) tool fyne package -os linux -release
	mv -f Deskcast.tar.xz dist/
	@echo "dist/Deskcast.tar.xz: tar -xJf it, then 'sudo make install' inside installs it with its menu entry"

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin dist
