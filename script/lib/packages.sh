# Sourced by script/*: the project's Debian packages and their installation.

SAGA_PACKAGES=(
  build-essential cmake pkg-config ccache git ca-certificates
  libcaf-dev libpqxx-dev libpq-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libboost-test-dev librestinio-dev libasio-dev libhttp-parser-dev
  libsodium-dev libcpp-jwt-dev libssl-dev libcli11-dev libtomlplusplus-dev libcurl4-openssl-dev libgoogle-perftools-dev wrk curl
  postgresql postgresql-client
)

saga_missing_packages() {
  local p
  for p in "${SAGA_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

# Installs the missing packages (plus any named as arguments); silent when none are missing.
saga_install_packages() {
  local missing
  missing=$(saga_missing_packages "$@")
  [ -z "$missing" ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: $missing" >&2; return 1; }
    sudo=(sudo)
  fi
  echo "setup: installing $(echo $missing | wc -w) packages: $(echo $missing)"
  "${sudo[@]}" apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends $missing \
    >/tmp/saga-apt.log 2>&1 || { tail -n 30 /tmp/saga-apt.log >&2; return 1; }
}
