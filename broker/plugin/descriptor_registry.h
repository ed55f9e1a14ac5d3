// DescriptorRegistry: the protobuf message types a payload plugin knows, read
// from descriptor set files (`protoc --descriptor_set_out=X
// --include_imports`), with a prototype per type for parsing payloads as
// DynamicMessages.
//
// Thread-safety: built once, while a plugin's config is loaded (Load does
// file I/O), and read-only afterwards; Find and Prototype are then safe from
// any thread (DescriptorPool lookups are, and DynamicMessageFactory locks
// inside GetPrototype). Descriptors, prototypes and messages made from them
// point into the registry: it must outlive them all (plugins hold it in a
// shared_ptr).
#ifndef SIFT_BROKER_PLUGIN_DESCRIPTOR_REGISTRY_H_
#define SIFT_BROKER_PLUGIN_DESCRIPTOR_REGISTRY_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sift::plugin {

class DescriptorRegistry {
 public:
  // Reads every file in `paths` (serialized FileDescriptorSets) into one
  // pool. The same .proto file may appear in several sets (shared imports
  // under --include_imports) if its descriptors are identical. Errors, each
  // naming the file:
  //  - NotFound: a file cannot be opened or read;
  //  - InvalidArgument: `paths` is empty, a file is not a FileDescriptorSet
  //    (or holds no files), two sets hold different files of the same name,
  //    a file imports one no set contains (the set was made without
  //    --include_imports), or protobuf refuses a file (its message is kept).
  static absl::StatusOr<std::unique_ptr<DescriptorRegistry>> Load(
      const std::vector<std::string>& paths);

  // As Load, from FileDescriptorSets already in memory; `names` label them
  // in errors (same length as `sets`). For tests and embedders.
  static absl::StatusOr<std::unique_ptr<DescriptorRegistry>> FromSets(
      const std::vector<std::string>& sets,
      const std::vector<std::string>& names);

  DescriptorRegistry(const DescriptorRegistry&) = delete;
  DescriptorRegistry& operator=(const DescriptorRegistry&) = delete;

  // The message type named `full_name` ("shop.Order"). Errors: NotFound.
  absl::StatusOr<const google::protobuf::Descriptor*> Find(
      std::string_view full_name) const;

  // The default instance of `full_name`, made by this registry's
  // DynamicMessageFactory; New() on it makes messages of the type.
  // Errors: NotFound.
  absl::StatusOr<const google::protobuf::Message*> Prototype(
      std::string_view full_name) const;

  const google::protobuf::DescriptorPool& pool() const { return pool_; }

 private:
  DescriptorRegistry() = default;

  google::protobuf::DescriptorPool pool_;
  // mutable: GetPrototype builds a type's prototype on first use (under the
  // factory's own lock) and hands back the same one afterwards.
  mutable google::protobuf::DynamicMessageFactory factory_{&pool_};
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_DESCRIPTOR_REGISTRY_H_
