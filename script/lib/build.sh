# Sourced by script/*: configure and build with CMake into build/ (or $SAGA_BUILD_DIR).

SAGA_BUILD_DIR=${SAGA_BUILD_DIR:-build}

saga_build() {
  local args=(-DCMAKE_BUILD_TYPE="${SAGA_BUILD_TYPE:-RelWithDebInfo}")
  [ -n "${CI:-}" ] && args+=(-DSAGA_WERROR=ON)
  [ -n "${SAGA_SANITIZERS:-}" ] && args+=(-DSAGA_SANITIZERS="$SAGA_SANITIZERS")
  cmake -S . -B "$SAGA_BUILD_DIR" "${args[@]}" >/dev/null
  cmake --build "$SAGA_BUILD_DIR" -j"${SAGA_JOBS:-2}" "$@"
}
