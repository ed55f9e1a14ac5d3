#include "broker/server/output_account.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace sift {
namespace {

// The hint of every accounted frame: who to credit, and how much.
struct Charge {
  OutputAccount* account;
  int64_t bytes;
  int64_t deliveries;
};

void Settle(const Charge& charge) {
  charge.account->Credit(charge.bytes, charge.deliveries);
  charge.account->Unref();
}

// A copied frame: the charge and the bytes in one allocation.
struct CopyBlock {
  Charge charge;
  // The bytes follow.
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

void FreeCopy(void*, void* hint) {
  auto* block = static_cast<CopyBlock*>(hint);
  Settle(block->charge);
  std::free(block);
}

struct BufferHint {
  Charge charge;
  OutBuffer* buffer;
};

void FreeBuffer(void*, void* hint) {
  auto* h = static_cast<BufferHint*>(hint);
  Settle(h->charge);
  delete h->buffer;
  delete h;
}

struct ShareHint {
  Charge charge;
  zmq_msg_t payload;  // a reference to the shared content
};

void FreeShare(void*, void* hint) {
  auto* h = static_cast<ShareHint*>(hint);
  Settle(h->charge);
  zmq_msg_close(&h->payload);
  delete h;
}

Charge Take(OutputAccount* account, int64_t bytes, int64_t deliveries) {
  account->Ref();
  account->Charge(bytes, deliveries);
  return Charge{account, bytes, deliveries};
}

}  // namespace

OutputAccount* OutputAccount::New(OutputAccount* parent) {
  if (parent != nullptr) parent->Ref();
  return new OutputAccount(parent);
}

OutputAccount::~OutputAccount() {
  if (parent_ != nullptr) parent_->Unref();
}

void OutputAccount::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void OutputAccount::Charge(int64_t bytes, int64_t deliveries) {
  pending_.fetch_add(bytes, std::memory_order_relaxed);
  if (deliveries != 0) {
    deliveries_.fetch_add(deliveries, std::memory_order_relaxed);
  }
  if (parent_ != nullptr) parent_->Charge(bytes);
}

void OutputAccount::Credit(int64_t bytes, int64_t deliveries) {
  pending_.fetch_sub(bytes, std::memory_order_relaxed);
  if (deliveries != 0) {
    deliveries_.fetch_sub(deliveries, std::memory_order_relaxed);
  }
  if (parent_ != nullptr) parent_->Credit(bytes);
}

void InitAccountedCopy(zmq_msg_t* m, std::string_view bytes,
                       OutputAccount* account, int64_t deliveries) {
  void* raw = std::malloc(sizeof(CopyBlock) + bytes.size());
  if (raw == nullptr) throw std::bad_alloc();
  auto* block = new (raw) CopyBlock{
      Take(account, static_cast<int64_t>(bytes.size()) + kFrameOverheadBytes,
           deliveries)};
  if (!bytes.empty()) std::memcpy(block->data(), bytes.data(), bytes.size());
  zmq_msg_init_data(m, block->data(), bytes.size(), FreeCopy, block);
}

void InitAccountedBuffer(zmq_msg_t* m, OutBuffer* buffer,
                         OutputAccount* account, int64_t deliveries) {
  const int64_t size = static_cast<int64_t>(buffer->bytes.size());
  auto* hint = new BufferHint{
      Take(account, size + kFrameOverheadBytes, deliveries), buffer};
  zmq_msg_init_data(m, buffer->bytes.data(), buffer->bytes.size(), FreeBuffer,
                    hint);
}

void InitAccountedShare(zmq_msg_t* m, zmq_msg_t* payload, int64_t extra_bytes,
                        OutputAccount* account, int64_t deliveries) {
  auto* hint = new ShareHint;
  zmq_msg_init(&hint->payload);
  zmq_msg_copy(&hint->payload, payload);
  const size_t size = zmq_msg_size(&hint->payload);
  hint->charge =
      Take(account,
           static_cast<int64_t>(size) + extra_bytes + 2 * kFrameOverheadBytes,
           deliveries);
  zmq_msg_init_data(m, zmq_msg_data(&hint->payload), size, FreeShare, hint);
}

}  // namespace sift
