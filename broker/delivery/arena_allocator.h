// ArenaAllocator is a standard allocator that takes its blocks from
// MessageArena, for the containers that grow with a burst of messages held
// for explicit-ack consumers: the lines of messages waiting for capacity
// (std::deque<Deliveries::Waiting>, one 512-byte node per 21 messages).
//
// Why: those nodes come and go in arrival order, as the messages do. From
// the heap, a burst of them was most of the fresh pages siftd faulted in
// while it held a backlog (each fault is dear on a virtual machine), and
// their small blocks, interleaved with larger ones, kept freed batch buffers
// from being reused (BENCHMARKS.md, Notes, fifteenth session). From the
// arena they land in chunks a Warmer has faulted in on another thread, and
// go back with them.
//
// A block comes from the arena while MessageArena::ShouldUse() says so and
// it fits (kMaxBlockBytes), else from ::operator new; a 16-byte tag in front
// of it says which, so that deallocate needs no lookup. Errors:
// std::bad_alloc as `new`. Stateless: every instance equals every other.
// Thread-safety: as MessageArena (any thread may allocate and free).
#ifndef SIFT_BROKER_DELIVERY_ARENA_ALLOCATOR_H_
#define SIFT_BROKER_DELIVERY_ARENA_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "broker/delivery/message_arena.h"

namespace sift::delivery {

template <typename T>
class ArenaAllocator {
 public:
  using value_type = T;
  using is_always_equal = std::true_type;
  static_assert(alignof(T) <= 16, "the arena aligns blocks to 16 bytes");

  ArenaAllocator() = default;
  template <typename U>
  ArenaAllocator(const ArenaAllocator<U>&) {}  // NOLINT: as std::allocator

  T* allocate(size_t n) {
    if (n > (SIZE_MAX - kTagBytes) / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = n * sizeof(T) + kTagBytes;
    char* block;
    uint64_t tag;
    if (bytes <= MessageArena::kMaxBlockBytes && MessageArena::ShouldUse()) {
      block = static_cast<char*>(MessageArena::Allocate(bytes));
      tag = kFromArena;
    } else {
      block = static_cast<char*>(::operator new(bytes));
      tag = kFromHeap;
    }
    *reinterpret_cast<uint64_t*>(block) = tag;
    return reinterpret_cast<T*>(block + kTagBytes);
  }

  void deallocate(T* p, size_t n) {
    char* block = reinterpret_cast<char*>(p) - kTagBytes;
    if (*reinterpret_cast<const uint64_t*>(block) == kFromArena) {
      MessageArena::Free(block, n * sizeof(T) + kTagBytes);
    } else {
      ::operator delete(block);
    }
  }

  template <typename U>
  bool operator==(const ArenaAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const ArenaAllocator<U>&) const {
    return false;
  }

 private:
  // 16, not 8: the object behind it keeps the block's 16-byte alignment.
  static constexpr size_t kTagBytes = 16;
  static constexpr uint64_t kFromHeap = 0;
  static constexpr uint64_t kFromArena = 1;
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_ARENA_ALLOCATOR_H_
