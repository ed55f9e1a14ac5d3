#include "broker/delivery/arena_allocator.h"

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "broker/delivery/message_arena.h"
#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

// Each test runs in a fresh thread, so that the chunk it bumps in is its
// own and is given back when the thread exits.
template <typename F>
void InThread(F f) {
  std::thread t(f);
  t.join();
}

struct Item {  // the size of Deliveries::Waiting
  uint64_t a;
  uint64_t b;
  uint32_t c;
  uint32_t d;
};

TEST(ArenaAllocatorTest, ADequeKeepsItsOrderAndItsNodesComeFromTheArena) {
  const MessageArena::Stats before = MessageArena::stats();
  InThread([&] {
    std::deque<Item, ArenaAllocator<Item>> line;
    // About 5 MB of nodes: more than two chunks.
    constexpr uint64_t kCount = 200000;
    for (uint64_t i = 0; i < kCount; ++i) {
      line.push_back(Item{i, ~i, static_cast<uint32_t>(i), 7});
    }
    EXPECT_GE(MessageArena::stats().chunks_in_use, before.chunks_in_use + 2);
    // Taken from the front while more come in behind, as a consumer's line.
    for (uint64_t i = 0; i < kCount; ++i) {
      ASSERT_EQ(line.front().a, i);
      ASSERT_EQ(line.front().b, ~i);
      line.pop_front();
      if (i % 2 == 0) line.push_back(Item{kCount + i, 0, 0, 0});
    }
    for (uint64_t i = 0; i < kCount; i += 2) {
      ASSERT_EQ(line.front().a, kCount + i);
      line.pop_front();
    }
    EXPECT_TRUE(line.empty());
  });
  // Every node went back, and the chunks with them (beyond the spares).
  const MessageArena::Stats after = MessageArena::stats();
  EXPECT_EQ(after.chunks_in_use, before.chunks_in_use);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
}

TEST(ArenaAllocatorTest, BlocksTooLargeForTheArenaComeFromTheHeap) {
  InThread([] {
    const MessageArena::Stats before = MessageArena::stats();
    // Over kMaxBlockBytes: from ::operator new, and freed there.
    std::vector<char, ArenaAllocator<char>> big(MessageArena::kMaxBlockBytes +
                                                1);
    big.back() = 'x';
    EXPECT_EQ(MessageArena::stats().chunks_in_use, before.chunks_in_use);
    std::vector<char, ArenaAllocator<char>> small(100, 'y');
    EXPECT_EQ(MessageArena::stats().chunks_in_use, before.chunks_in_use + 1);
    EXPECT_EQ(big.back(), 'x');
    EXPECT_EQ(small.front(), 'y');
    // Either kind is freed the right way whatever the order.
    big = {};
    small = {};
  });
}

TEST(ArenaAllocatorTest, BlocksAreAlignedToSixteenBytes) {
  InThread([] {
    ArenaAllocator<Item> alloc;
    std::vector<std::pair<Item*, size_t>> blocks;
    for (size_t n = 1; n < 100; ++n) {
      Item* p = alloc.allocate(n);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << n;
      p[n - 1].a = n;
      blocks.emplace_back(p, n);
    }
    for (auto [p, n] : blocks) {
      EXPECT_EQ(p[n - 1].a, n);
      alloc.deallocate(p, n);
    }
  });
}

}  // namespace
}  // namespace sift::delivery
