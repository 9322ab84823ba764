// Journal readers: each runs on its own thread (caf::detached) and owns one event_store, created
// lazily on that thread so a PostgreSQL store opens its connection there.
#include "actors/journal_reader.hpp"

#include <exception>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/inspect.hpp"

namespace saga::actors {
namespace {

struct reader_state {
  store_factory make_store;
  std::unique_ptr<persistence::event_store> store;
  static inline const char* name = "journal_reader";

  persistence::event_store& get() {
    if (!store) store = make_store();
    return *store;
  }
};

/// The exception being handled as an `internal` store error (a throwing store is a bug).
persistence::store_error exception_error() {
  const char* what = "unknown exception";
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  return persistence::store_error{persistence::store_errc::internal,
                                  std::string("journal reader: ") + what, -1};
}

stream_load read_events(persistence::event_store& store, const std::string& stream_id,
                        std::int64_t from, stream_load out) {
  auto events = store.read_stream(stream_id, from);
  if (!events) {
    out.ok = false;
    out.error = events.error();
    return out;
  }
  out.events = std::move(*events);
  out.ok = true;
  return out;
}

journal_reader::behavior_type reader(journal_reader::stateful_pointer<reader_state> self,
                                     store_factory make_store) {
  self->state.make_store = std::move(make_store);
  return {
      [=](load_atom, const std::string& stream_id, bool use_snapshot) -> stream_load {
        stream_load out;
        try {
          auto& store = self->state.get();
          std::int64_t from = 1;
          if (use_snapshot) {
            auto snap = store.load_snapshot(stream_id);
            if (!snap) {
              out.error = snap.error();
              return out;
            }
            if (*snap) {
              out.has_snapshot = true;
              out.snap = std::move(**snap);
              from = out.snap.version + 1;
            }
          }
          return read_events(store, stream_id, from, std::move(out));
        } catch (...) {
          out.ok = false;
          out.error = exception_error();
          return out;
        }
      },
      [=](read_atom, const std::string& stream_id, std::int64_t from) -> stream_load {
        try {
          return read_events(self->state.get(), stream_id, from, stream_load{});
        } catch (...) {
          stream_load out;
          out.error = exception_error();
          return out;
        }
      },
      [=](snap_atom, const persistence::snapshot& snap) -> snapshot_saved {
        snapshot_saved out;
        try {
          auto stored = self->state.get().save_snapshot(snap);
          if (!stored) {
            out.error = stored.error();
            return out;
          }
          out.ok = true;
          out.stored = *stored;
        } catch (...) {
          out.error = exception_error();
        }
        return out;
      },
  };
}

}  // namespace

std::vector<journal_reader> spawn_journal_readers(caf::actor_system& system,
                                                  const store_factory& make_store,
                                                  std::size_t count) {
  std::vector<journal_reader> readers;
  if (count == 0) count = 1;
  for (std::size_t i = 0; i < count; ++i) {
    readers.push_back(system.spawn<caf::detached>(reader, make_store));
  }
  return readers;
}

const journal_reader& reader_for(const std::vector<journal_reader>& readers,
                                 const std::string& stream_id) {
  return readers[std::hash<std::string>{}(stream_id) % readers.size()];
}

}  // namespace saga::actors
