// InFlightIndex maps the delivery id of each message in flight to its entry
// slot in Deliveries. Delivery ids are handed out in sequence and most are
// acked soon, so the live ids at any time mostly lie in a short window: a
// direct-mapped ring indexed by the id's low bits finds them with one array
// access, and the few that collide with an older id still in flight (a
// message held long past thousands of newer ones) go to a hash map beside
// it. The ring doubles when it is more than half full or the map grows
// large, so both stay small.
//
// Not thread-safe: owned by the routing thread with its Deliveries.
#ifndef SIFT_BROKER_DELIVERY_IN_FLIGHT_INDEX_H_
#define SIFT_BROKER_DELIVERY_IN_FLIGHT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace sift::delivery {

class InFlightIndex {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};

  InFlightIndex() : ring_(kInitialRing) {}
  InFlightIndex(const InFlightIndex&) = delete;
  InFlightIndex& operator=(const InFlightIndex&) = delete;

  // Adds `id` -> `slot`. REQUIRES: id != 0 and not already present.
  void Insert(uint64_t id, uint32_t slot) {
    if (size_ + 1 > ring_.size() / 2 || overflow_.size() > ring_.size() / 8) {
      Grow();
    }
    Place(id, slot);
    ++size_;
  }

  // The slot of `id`, or kNone (always for id 0).
  uint32_t Find(uint64_t id) const {
    const Cell& c = ring_[id & (ring_.size() - 1)];
    if (c.id == id && id != 0) return c.slot;
    if (overflow_.empty()) return kNone;
    auto it = overflow_.find(id);
    return it == overflow_.end() ? kNone : it->second;
  }

  // Removes `id`; false if it was not present.
  bool Erase(uint64_t id) {
    Cell& c = ring_[id & (ring_.size() - 1)];
    if (c.id == id && id != 0) {
      c.id = 0;
      --size_;
      return true;
    }
    if (overflow_.erase(id) == 0) return false;
    --size_;
    return true;
  }

  size_t size() const { return size_; }

 private:
  static constexpr size_t kInitialRing = 4096;  // a power of 2
  struct Cell {
    uint64_t id = 0;  // 0: empty
    uint32_t slot = 0;
  };

  void Place(uint64_t id, uint32_t slot) {
    Cell& c = ring_[id & (ring_.size() - 1)];
    if (c.id == 0) {
      c.id = id;
      c.slot = slot;
    } else {
      overflow_.emplace(id, slot);
    }
  }

  void Grow() {
    std::vector<Cell> old(ring_.size() * 2);
    old.swap(ring_);
    absl::flat_hash_map<uint64_t, uint32_t> old_overflow;
    old_overflow.swap(overflow_);
    for (const Cell& c : old) {
      if (c.id != 0) Place(c.id, c.slot);
    }
    for (const auto& [id, slot] : old_overflow) Place(id, slot);
  }

  std::vector<Cell> ring_;  // size: a power of 2
  absl::flat_hash_map<uint64_t, uint32_t> overflow_;
  size_t size_ = 0;
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_IN_FLIGHT_INDEX_H_
