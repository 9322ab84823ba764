#include "actors/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace saga::actors::detail {

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("actors")) return existing;
    return spdlog::stderr_color_mt("actors");
  }();
  return *logger;
}

}  // namespace saga::actors::detail
