#!/usr/bin/env bash
# Runs a command inside the test environment: a private D-Bus session bus and
# a PulseAudio daemon with a null sink whose monitor is the default source.
# Tests start their own Xvfb servers (internal/testenv), one per test.
#   scripts/testenv.sh go test ./...
set -euo pipefail

tmp=$(mktemp -d /tmp/deskcast-test.XXXXXX)
cleanup() {
  [ -n "${DBUS_SESSION_BUS_PID:-}" ] && kill "$DBUS_SESSION_BUS_PID" 2>/dev/null || true
  if [ -n "${started_pulse:-}" ]; then pulseaudio --kill 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# D-Bus: a private session bus (fyne's tray needs one; see fyne-io/fyne#6403).
eval "$(dbus-launch --sh-syntax)"
export DBUS_SESSION_BUS_ADDRESS DBUS_SESSION_BUS_PID

# PulseAudio: reuse a running daemon untouched (tests load null sinks of their own and unload
# them), else start one for this run with a null sink, vsink, as its default sink and source,
# so that browsers in the tests have somewhere to play.
if command -v pulseaudio >/dev/null 2>&1 && ! pactl info >/dev/null 2>&1; then
  pulseaudio -D --exit-idle-time=-1 --disallow-exit --log-target=file:"$tmp/pulse.log" \
    && started_pulse=1
  for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  if [ -n "${started_pulse:-}" ]; then
    pactl load-module module-null-sink sink_name=vsink sink_properties=device.description=DeskcastTestSink >/dev/null
    pactl set-default-sink vsink
    pactl set-default-source vsink.monitor
  fi
fi

unset DISPLAY WAYLAND_DISPLAY
"$@"
