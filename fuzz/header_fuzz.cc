// libFuzzer target: the input is one header frame (frame 0 of a sift
// message). Runs fuzz::CheckHeader on it: HeaderDecoder against protobuf,
// DecodePubFast / DecodeDeliverFast against the full decoder, encoders
// against decoders. Built and run by tools/fuzz.sh; see docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/decoder_checks.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  sift::fuzz::Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sift::fuzz::CheckHeader(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
