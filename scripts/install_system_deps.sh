#!/usr/bin/env bash
# Install the system packages the course needs, when missing.
# As root with apt-get (Debian/Ubuntu, Colab) it installs them; otherwise it
# prints what to install and carries on (the course falls back where it can).
# Usage: scripts/install_system_deps.sh graphviz [chromium] [bubblewrap]
set -u
missing=()
for pkg in "$@"; do
  case "$pkg" in
    graphviz) command -v dot >/dev/null 2>&1 || missing+=(graphviz) ;;
    chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
    # the grading sandbox (course grade): one bubblewrap jail per submission kernel
    bubblewrap) command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap) ;;
    *) echo "install_system_deps: unknown package $pkg" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing system packages: ${missing[*]} =="
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit $?
fi
echo "WARNING: missing system packages: ${missing[*]}" >&2
echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]}" >&2
echo "  macOS: brew install ${missing[*]}   (the course still runs; graphs fall back to matplotlib)" >&2
case " ${missing[*]} " in
  *" bubblewrap "*) echo "  without bubblewrap, course grade refuses to grade (see assignments/README.md: --no-sandbox)" >&2 ;;
esac
exit 0
