// Internal to saga_actors: the "actors" spdlog logger (crashes, restarts, journal trouble).
// spdlog loggers are thread-safe; any thread. Not included by public headers.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace saga::actors::detail {

/// The shared logger of the actor runtime, created on first use (stderr, colour when a tty).
spdlog::logger& log();

}  // namespace saga::actors::detail
