#include "broker/delivery/block_cache.h"

#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

TEST(BlockCacheTest, ReusesTheBlockFreedLastWithinItsSizeClass) {
  void* a = BlockCache::Allocate(200);
  std::memset(a, 1, 200);
  BlockCache::Free(a, 200);
  // 193..256 bytes share a class: the block comes back.
  void* b = BlockCache::Allocate(256);
  EXPECT_EQ(b, a);
  std::memset(b, 2, 256);
  void* c = BlockCache::Allocate(150);  // another class: a new block
  EXPECT_NE(c, a);
  BlockCache::Free(b, 256);
  BlockCache::Free(c, 150);
}

TEST(BlockCacheTest, LargeBlocksAreNotCached) {
  const size_t before = BlockCache::CachedBytes();
  void* big = BlockCache::Allocate(5000);
  std::memset(big, 3, 5000);
  BlockCache::Free(big, 5000);
  EXPECT_EQ(BlockCache::CachedBytes(), before);
}

TEST(BlockCacheTest, AThreadCachesAtMostItsBound) {
  std::thread t([] {
    std::vector<void*> blocks;
    const size_t n = BlockCache::kMaxBytesPerThread / 1024 + 100;
    for (size_t i = 0; i < n; ++i) blocks.push_back(BlockCache::Allocate(1024));
    for (void* p : blocks) BlockCache::Free(p, 1024);
    EXPECT_EQ(BlockCache::CachedBytes(), BlockCache::kMaxBytesPerThread);
    // Reuse: the cache hands its blocks back before asking for new ones.
    void* again = BlockCache::Allocate(1000);
    EXPECT_EQ(BlockCache::CachedBytes(),
              BlockCache::kMaxBytesPerThread - 1024);
    BlockCache::Free(again, 1000);
  });
  t.join();
}

TEST(BlockCacheTest, BlocksMayBeFreedOnAnotherThread) {
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(BlockCache::Allocate(300));
  std::thread t([&blocks] {
    for (void* p : blocks) BlockCache::Free(p, 300);
    EXPECT_EQ(BlockCache::CachedBytes(), 1000u * 320);
  });
  t.join();  // its cache is released as it exits
}

}  // namespace
}  // namespace sift::delivery
