// BlockCache keeps freed memory blocks of up to 1 KiB for reuse, per thread
// and by size class (64-byte steps), up to 4 MiB per thread; beyond that,
// and for larger blocks, it is ::operator new and delete. StoredMessage::Make
// allocates through it: a broker holding a burst of messages for explicit
// acks allocates and frees one block per message, in an order that leaves
// glibc's small-object caches behind (each free then merges neighbouring
// chunks, whose headers are cold), while a block from the cache is the one
// freed last, still warm.
//
// Thread-safety: Allocate and Free may be called from any thread; each
// thread has its own lists (a block freed on another thread than it was
// allocated on joins that thread's lists). A thread's cached blocks are
// released when it exits.
#ifndef SIFT_BROKER_DELIVERY_BLOCK_CACHE_H_
#define SIFT_BROKER_DELIVERY_BLOCK_CACHE_H_

#include <array>
#include <cstddef>
#include <new>

namespace sift::delivery {

class BlockCache {
 public:
  static constexpr size_t kStep = 64;      // bytes per size class
  static constexpr size_t kClasses = 16;   // blocks of up to 1 KiB
  static constexpr size_t kMaxBytesPerThread = size_t{4} << 20;

  // A block of at least `bytes` bytes (> 0), aligned as ::operator new's.
  static void* Allocate(size_t bytes) {
    const size_t c = ClassOf(bytes);
    if (c >= kClasses) return ::operator new(bytes);
    Lists& lists = Mine();
    if (Node* n = lists.heads[c]) {
      lists.heads[c] = n->next;
      lists.bytes -= BlockBytes(c);
      // The next block of this class may have left the caches while it
      // waited here; start loading it, for writing, a message ahead.
      if (n->next != nullptr) __builtin_prefetch(n->next, 1);
      return n;
    }
    return ::operator new(BlockBytes(c));
  }

  // Gives back a block Allocate(bytes) returned, with the same `bytes`.
  static void Free(void* p, size_t bytes) {
    const size_t c = ClassOf(bytes);
    if (c >= kClasses) return ::operator delete(p);
    Lists& lists = Mine();
    if (lists.bytes + BlockBytes(c) > kMaxBytesPerThread) {
      return ::operator delete(p);
    }
    Node* n = static_cast<Node*>(p);
    n->next = lists.heads[c];
    lists.heads[c] = n;
    lists.bytes += BlockBytes(c);
  }

  // Bytes cached by the calling thread (for tests).
  static size_t CachedBytes() { return Mine().bytes; }

 private:
  struct Node {
    Node* next;
  };
  struct Lists {
    std::array<Node*, kClasses> heads{};
    size_t bytes = 0;
    ~Lists() {
      for (Node*& head : heads) {
        for (Node* n = head; n != nullptr;) {
          Node* next = n->next;
          ::operator delete(n);
          n = next;
        }
        head = nullptr;
      }
      // A block freed later on this thread (another thread_local's
      // destructor) goes straight to ::operator delete.
      bytes = kMaxBytesPerThread;
    }
  };

  static size_t ClassOf(size_t bytes) { return (bytes - 1) / kStep; }
  static size_t BlockBytes(size_t c) { return (c + 1) * kStep; }
  static Lists& Mine() {
    thread_local Lists lists;
    return lists;
  }
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_BLOCK_CACHE_H_
