#include "broker/delivery/message_arena.h"

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

constexpr size_t kBlock = 240;  // about a 128-byte message with its counts

// Each test runs in a fresh thread, so that its chunk is its own and is
// given back when the thread exits.
template <typename F>
void InThread(F f) {
  std::thread t(f);
  t.join();
}

TEST(MessageArenaTest, BlocksAreAlignedDistinctAndWritable) {
  InThread([] {
    std::vector<char*> blocks;
    for (size_t i = 0; i < 1000; ++i) {
      char* b = static_cast<char*>(MessageArena::Allocate(17 + i % 300));
      ASSERT_EQ(reinterpret_cast<uintptr_t>(b) % 16, 0u);
      std::memset(b, static_cast<int>(i), 17 + i % 300);
      blocks.push_back(b);
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      ASSERT_EQ(blocks[i][0], static_cast<char>(i)) << i;
      ASSERT_EQ(blocks[i][16 + i % 300], static_cast<char>(i)) << i;
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      MessageArena::Free(blocks[i], 17 + i % 300);
    }
  });
}

TEST(MessageArenaTest, ChunksGoBackOnceEmptyKeepingAFewSpares) {
  const MessageArena::Stats before = MessageArena::stats();
  InThread([] {
    // About 40 chunks' worth, freed in order as a drained burst would be.
    const size_t n = 40 * MessageArena::kChunkBytes / kBlock;
    std::vector<void*> blocks(n);
    for (void*& b : blocks) b = MessageArena::Allocate(kBlock);
    EXPECT_GE(MessageArena::stats().chunks_in_use, 40u);
    for (void* b : blocks) MessageArena::Free(b, kBlock);
  });
  const MessageArena::Stats after = MessageArena::stats();
  // Only what other threads hold is still in use; the rest were unmapped
  // beyond the spares.
  EXPECT_EQ(after.chunks_in_use, before.chunks_in_use);
  EXPECT_LE(after.spare_chunks, MessageArena::kMaxSpareChunks);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
}

TEST(MessageArenaTest, AChunkLivesWhileAnyOfItsBlocksDoes) {
  InThread([] {
    const MessageArena::Stats before = MessageArena::stats();
    std::vector<void*> blocks;
    // Two full chunks and a bit: the first two are retired.
    const size_t per_chunk = MessageArena::kChunkBytes / kBlock;
    for (size_t i = 0; i < 2 * per_chunk + 10; ++i) {
      blocks.push_back(MessageArena::Allocate(kBlock));
    }
    // Free all but the first block: its chunk stays, the second goes.
    for (size_t i = 1; i < blocks.size(); ++i) {
      MessageArena::Free(blocks[i], kBlock);
    }
    MessageArena::FlushFrees();
    MessageArena::Stats now = MessageArena::stats();
    EXPECT_EQ(now.chunks_in_use, before.chunks_in_use + 2);  // kept + current
    EXPECT_EQ(now.live_bytes, before.live_bytes + kBlock);
    MessageArena::Free(blocks[0], kBlock);
    EXPECT_EQ(MessageArena::stats().chunks_in_use, before.chunks_in_use + 2)
        << "a free is counted with the next ones (FlushFrees)";
    MessageArena::FlushFrees();
    now = MessageArena::stats();
    EXPECT_EQ(now.chunks_in_use, before.chunks_in_use + 1);  // the current
    EXPECT_EQ(now.live_bytes, before.live_bytes);
  });
}

TEST(MessageArenaTest, BlocksMayBeFreedOnAnotherThread) {
  const MessageArena::Stats before = MessageArena::stats();
  std::vector<void*> blocks;
  InThread([&blocks] {
    for (size_t i = 0; i < 3 * MessageArena::kChunkBytes / kBlock; ++i) {
      blocks.push_back(MessageArena::Allocate(kBlock));
    }
  });
  // The allocating thread has exited (its chunk retired); two threads free
  // halves at once.
  std::thread a([&blocks] {
    for (size_t i = 0; i < blocks.size(); i += 2) {
      MessageArena::Free(blocks[i], kBlock);
    }
  });
  std::thread b([&blocks] {
    for (size_t i = 1; i < blocks.size(); i += 2) {
      MessageArena::Free(blocks[i], kBlock);
    }
  });
  a.join();
  b.join();
  EXPECT_EQ(MessageArena::stats().chunks_in_use, before.chunks_in_use);
}

TEST(MessageArenaTest, DeclinesWhileFewLiveBlocksPinManyChunks) {
  InThread([] {
    ASSERT_TRUE(MessageArena::ShouldUse());
    // One block survives in each chunk: over kWasteFloorBytes mapped, almost
    // none of it live.
    const size_t per_chunk = MessageArena::kChunkBytes / kBlock;
    const size_t chunks = MessageArena::kWasteFloorBytes /
                              MessageArena::kChunkBytes + 8;
    std::vector<void*> kept;
    for (size_t c = 0; c < chunks; ++c) {
      for (size_t i = 0; i < per_chunk; ++i) {
        void* b = MessageArena::Allocate(kBlock);
        if (i == 0) {
          kept.push_back(b);
        } else {
          MessageArena::Free(b, kBlock);
        }
      }
    }
    // The next chunk taken notices the waste.
    for (size_t i = 0; i < per_chunk; ++i) {
      MessageArena::Free(MessageArena::Allocate(kBlock), kBlock);
    }
    EXPECT_FALSE(MessageArena::ShouldUse());
    // Once the pinned blocks go, it is used again (after a recheck).
    for (void* b : kept) MessageArena::Free(b, kBlock);
    bool used = false;
    for (size_t i = 0; i <= MessageArena::kRecheckEvery && !used; ++i) {
      used = MessageArena::ShouldUse();
    }
    EXPECT_TRUE(used);
  });
}

}  // namespace
}  // namespace sift::delivery
