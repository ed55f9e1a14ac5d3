// libFuzzer target: the input is one BATCH body (frame 1 of a BATCH
// message). Runs fuzz::CheckBatchBody on it (BatchReader bounds and order,
// SkipRest, every entry's header through CheckHeader, BatchWriter round
// trip) and fuzz::CheckBatchHeader on counts derived from it. Built and run
// by tools/fuzz.sh; see docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/decoder_checks.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  sift::fuzz::Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sift::fuzz::CheckBatchBody(
      std::string_view(reinterpret_cast<const char*>(data), size));
  // Counts of every varint length: the size itself, and the first bytes
  // read as a little-endian number.
  uint32_t count = 0;
  for (size_t i = 0; i < size && i < 4; ++i) {
    count |= static_cast<uint32_t>(data[i]) << (8 * i);
  }
  sift::fuzz::CheckBatchHeader(static_cast<uint32_t>(size));
  sift::fuzz::CheckBatchHeader(count);
  return 0;
}
