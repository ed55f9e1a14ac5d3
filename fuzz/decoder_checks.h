// Cross-checks of sift's frame decoders (broker/protocol: HeaderDecoder,
// DecodePubFast, DecodeDeliverFast, BatchReader) and of the encoders that
// must round-trip with them. Shared by the libFuzzer targets header_fuzz.cc
// and batch_fuzz.cc; built by tools/fuzz.sh with clang, not by Bazel.
//
// A broken invariant prints what broke and the frame in hex to stderr, then
// aborts, so libFuzzer saves the input as a crash artifact. Memory errors are
// left to AddressSanitizer: every decoder runs on its own exact-size heap
// copy of the bytes, so a read one byte past a frame (or past a batch entry)
// is reported even when the frame sits inside a larger buffer.
//
// Not thread-safe (one HeaderDecoder, reused across inputs as the broker
// reuses its own); libFuzzer runs one input at a time.
#ifndef SIFT_FUZZ_DECODER_CHECKS_H_
#define SIFT_FUZZ_DECODER_CHECKS_H_

#include <cstdint>
#include <string_view>

namespace sift::fuzz {

// Reads SIFT_FUZZ_ALLOW (see docs/fuzzing.md) and silences protobuf's
// logging. Call once, from LLVMFuzzerInitialize.
void Init();

// Every check on one header frame: frame 0 of a message, or the header of a
// batch entry.
//  - HeaderDecoder agrees with a plain protobuf parse (accept/reject and
//    content); a rejection carries BAD_FRAME.
//  - DecodePubFast / DecodeDeliverFast accepting the frame implies the full
//    decoder accepts it as that command with the same fields, and their
//    views point inside the frame.
//  - Whatever either decoder read re-encodes (EncodePub, EncodeDeliver,
//    EncodeHeader) to the bytes protobuf would write, and decodes back to
//    the same fields.
void CheckHeader(std::string_view frame);

// Every check on one BATCH body (frame 1): BatchReader's entries tile the
// body in order and inside it, a malformed body ends in error() and stays
// ended, SkipRest() counts what Next() walks, each entry's header passes
// CheckHeader, and BatchWriter rebuilds the PUB and DELIVER entries into a
// body that reads back the same.
void CheckBatchBody(std::string_view body);

// EncodeBatchHeader(count) writes BatchHeaderSize(count) bytes, exactly what
// protobuf writes for Header{batch{count}}, and IsBatchHeader() says yes.
void CheckBatchHeader(uint32_t count);

}  // namespace sift::fuzz

#endif  // SIFT_FUZZ_DECODER_CHECKS_H_
