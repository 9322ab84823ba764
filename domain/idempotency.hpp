// The bounded idempotency memory of a keyed aggregate: idempotency key → the events that key
// produced, for the newest `capacity` keys only (oldest forgotten first). A plain value owned
// by one aggregate state; not thread-safe, like the state that holds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/types.hpp"

namespace saga::domain {

/// One remembered key and the events it produced (in the order they were applied).
template <class Event>
struct remembered {
  std::string key;
  std::vector<Event> events;

  friend bool operator==(const remembered& a, const remembered& b) {
    return a.key == b.key && a.events == b.events;
  }
  friend bool operator!=(const remembered& a, const remembered& b) { return !(a == b); }
};

/// Remembers keys in the order they were first seen and forgets the oldest once more than
/// `capacity()` are held, so an aggregate's state and snapshot stay bounded however many
/// commands it handles. A ring of entries plus a key index: lookups and inserts are O(1),
/// moves never allocate, copies are O(size). An empty memory holds no storage (two words):
/// most aggregates held by idle actors have remembered nothing yet, or are new.
///
/// Forgetting is safe only because every aggregate also refuses, from its business state,
/// what would repeat an effect (a second reservation for an order, a second charge, a second
/// confirmation): the memory gives a retry the exact earlier answer, the state keeps it
/// harmless once the key is gone.
template <class Event>
class idempotency_memory {
 public:
  using entry = remembered<Event>;

  /// Walks the entries oldest first.
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = entry;
    using difference_type = std::ptrdiff_t;
    using pointer = const entry*;
    using reference = const entry&;

    const_iterator() = default;
    reference operator*() const { return memory_->at_seq(seq_); }
    pointer operator->() const { return &memory_->at_seq(seq_); }
    const_iterator& operator++() {
      ++seq_;
      return *this;
    }
    const_iterator operator++(int) {
      auto old = *this;
      ++seq_;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.seq_ == b.seq_;
    }
    friend bool operator!=(const const_iterator& a, const const_iterator& b) { return !(a == b); }

   private:
    friend class idempotency_memory;
    const_iterator(const idempotency_memory* memory, std::uint64_t seq)
        : memory_(memory), seq_(seq) {}
    const idempotency_memory* memory_ = nullptr;
    std::uint64_t seq_ = 0;
  };

  /// A memory of max_remembered_keys keys (implicit, so states stay aggregate-initialisable).
  idempotency_memory() : idempotency_memory(max_remembered_keys) {}
  /// A memory of at most `capacity` keys; 0 is taken as 1 (a memory that forgets the key it
  /// just stored would not even recognise an immediate retry).
  explicit idempotency_memory(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  idempotency_memory(const idempotency_memory& other)
      : capacity_(other.capacity_),
        body_(other.body_ ? std::make_unique<body>(*other.body_) : nullptr) {}
  idempotency_memory& operator=(const idempotency_memory& other) {
    if (this != &other) {
      capacity_ = other.capacity_;
      body_ = other.body_ ? std::make_unique<body>(*other.body_) : nullptr;
    }
    return *this;
  }
  /// Moves leave `other` empty (not merely unspecified): its slots must restart at 0.
  idempotency_memory(idempotency_memory&& other) noexcept
      : capacity_(other.capacity_), body_(std::move(other.body_)) {}
  idempotency_memory& operator=(idempotency_memory&& other) noexcept {
    if (this != &other) {
      capacity_ = other.capacity_;
      body_ = std::move(other.body_);
    }
    return *this;
  }
  ~idempotency_memory() = default;

  /// The events `key` produced, or nullptr when the key is unknown or was forgotten.
  [[nodiscard]] const std::vector<Event>* find(const std::string& key) const {
    if (!body_) return nullptr;
    auto it = body_->index.find(key);
    if (it == body_->index.end()) return nullptr;
    return &at_seq(it->second).events;
  }
  [[nodiscard]] bool contains(const std::string& key) const {
    return body_ && body_->index.count(key) != 0;
  }

  /// Records that `key` produced `e`. A known key keeps its age (all events of one command
  /// are applied together); a new key becomes the newest and may push out the oldest.
  /// An empty key is not remembered.
  void remember(const std::string& key, const Event& e) {
    if (key.empty()) return;
    if (!body_) body_ = std::make_unique<body>();
    auto& b = *body_;
    if (auto it = b.index.find(key); it != b.index.end()) {
      slot(it->second).events.push_back(e);
      return;
    }
    const std::uint64_t seq = b.next_seq++;
    if (b.ring.size() < capacity_) {
      b.ring.push_back(entry{key, {e}});
    } else {  // the slot of `seq` holds the oldest entry, seq - capacity: reuse it
      entry& oldest = slot(seq);
      b.index.erase(oldest.key);
      oldest.key = key;
      oldest.events.clear();
      oldest.events.push_back(e);
    }
    b.index.emplace(key, seq);
  }

  [[nodiscard]] std::size_t size() const noexcept { return body_ ? body_->ring.size() : 0; }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] const_iterator begin() const noexcept { return {this, next_seq() - size()}; }
  [[nodiscard]] const_iterator end() const noexcept { return {this, next_seq()}; }

  /// Same capacity and the same keys with the same events in the same order.
  friend bool operator==(const idempotency_memory& a, const idempotency_memory& b) {
    if (a.capacity_ != b.capacity_ || a.size() != b.size()) return false;
    for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y)
      if (*x != *y) return false;
    return true;
  }
  friend bool operator!=(const idempotency_memory& a, const idempotency_memory& b) {
    return !(a == b);
  }

 private:
  // Entry `seq` (counted from the first key ever remembered) lives in slot seq % capacity.
  [[nodiscard]] const entry& at_seq(std::uint64_t seq) const {
    return body_->ring[static_cast<std::size_t>(seq % capacity_)];
  }
  entry& slot(std::uint64_t seq) { return body_->ring[static_cast<std::size_t>(seq % capacity_)]; }
  [[nodiscard]] std::uint64_t next_seq() const noexcept { return body_ ? body_->next_seq : 0; }

  /// Allocated by the first key remembered.
  struct body {
    std::uint64_t next_seq = 0;  ///< sequence number the next new key gets
    std::vector<entry> ring;     ///< grows to capacity_, then reused slot by slot
    std::unordered_map<std::string, std::uint64_t> index;  ///< key → sequence number
  };

  std::size_t capacity_;
  std::unique_ptr<body> body_;
};

}  // namespace saga::domain
