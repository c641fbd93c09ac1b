#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Deskcast needs, only when some are missing.
#   scripts/deps.sh build   - what `make build` / `make run` need
#   scripts/deps.sh test    - plus Xvfb, D-Bus, PulseAudio, sox, Chromium, Firefox ESR, WebKitGTK, nftables for `make test`
set -euo pipefail

build_pkgs=(gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev
  libxi-dev libxxf86vm-dev libxkbcommon-dev libxext-dev portaudio19-dev libturbojpeg0-dev libopenh264-dev libyuv-dev libvpx-dev libopus-dev libpipewire-0.3-dev)
test_pkgs=(xvfb xauth libgl1-mesa-dri dbus dbus-x11 pulseaudio pulseaudio-utils libasound2-plugins sox
  chromium x11-xserver-utils xdotool firefox-esr webkit2gtk-driver nftables
  mutter pipewire wireplumber xdg-desktop-portal xdg-desktop-portal-gnome gir1.2-gtk-3.0 python3-gi python3-gi-cairo)

want=("${build_pkgs[@]}")
[ "${1:-build}" = "test" ] && want+=("${test_pkgs[@]}")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian/Ubuntu system; install the equivalents of: ${want[*]} (see README)" >&2
  exit 0
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive $cmd
    exit 0
  fi
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run: sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive $cmd
