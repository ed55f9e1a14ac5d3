#include "broker/plugin/descriptor_registry.h"

#include <google/protobuf/descriptor.pb.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift::plugin {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptorProto;
using google::protobuf::FileDescriptorSet;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "descriptor set ", path, ": cannot open: ", std::strerror(errno)));
  }
  std::string out;
  char buf[64 * 1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    return absl::NotFoundError(absl::StrCat(
        "descriptor set ", path, ": cannot read: ", std::strerror(err)));
  }
  return out;
}

// Keeps protobuf's first complaint about a file instead of letting it go to
// GOOGLE_LOG.
class FirstError : public DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const google::protobuf::Message* descriptor,
                ErrorLocation location, const std::string& message) override {
    if (!error_.empty()) return;
    error_ = element_name.empty() ? message
                                  : absl::StrCat(element_name, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// The files of every set, by name, and builds them into a pool dependencies
// first (sets made separately need not be in any order between them).
class PoolBuilder {
 public:
  explicit PoolBuilder(DescriptorPool* pool) : pool_(pool) {}

  absl::Status Add(const std::string& set_bytes, const std::string& set_name) {
    FileDescriptorSet set;
    if (!set.ParseFromString(set_bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "descriptor set ", set_name, ": not a serialized FileDescriptorSet"));
    }
    // Any short text parses as a set of unknown fields; a real one (from
    // protoc --descriptor_set_out) always holds at least one file.
    if (set.file_size() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("descriptor set ", set_name,
                       ": holds no files (not a FileDescriptorSet?)"));
    }
    for (FileDescriptorProto& file : *set.mutable_file()) {
      auto it = files_.find(file.name());
      if (it != files_.end()) {
        if (it->second.proto.SerializeAsString() != file.SerializeAsString()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "descriptor set ", set_name, ": file ", file.name(),
              " differs from the one of the same name in ", it->second.set));
        }
        continue;
      }
      std::string name = file.name();
      order_.push_back(name);
      files_.emplace(std::move(name), Entry{std::move(file), set_name});
    }
    return absl::OkStatus();
  }

  absl::Status BuildAll() {
    for (const std::string& name : order_) {
      if (absl::Status s = Build(name); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  struct Entry {
    FileDescriptorProto proto;
    std::string set;  // the set it came from, for errors
  };

  absl::Status Build(const std::string& name) {
    if (pool_->FindFileByName(name) != nullptr) return absl::OkStatus();
    const Entry& entry = files_.find(name)->second;  // REQUIRES: present
    if (!visiting_.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("descriptor set ", entry.set, ": file ", name,
                       " is part of an import cycle"));
    }
    for (const std::string& dep : entry.proto.dependency()) {
      if (files_.find(dep) == files_.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "descriptor set ", entry.set, ": file ", name, " imports ", dep,
            ", which no descriptor set holds (make the set with protoc "
            "--include_imports, or list the set that has it)"));
      }
      if (absl::Status s = Build(dep); !s.ok()) return s;
    }
    visiting_.erase(name);
    FirstError errors;
    if (pool_->BuildFileCollectingErrors(entry.proto, &errors) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "descriptor set ", entry.set, ": file ", name, ": ",
          errors.error().empty() ? "refused by protobuf" : errors.error()));
    }
    return absl::OkStatus();
  }

  DescriptorPool* pool_;
  absl::flat_hash_map<std::string, Entry> files_;
  std::vector<std::string> order_;  // first appearance, for stable errors
  absl::flat_hash_set<std::string> visiting_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DescriptorRegistry>> DescriptorRegistry::Load(
    const std::vector<std::string>& paths) {
  std::vector<std::string> sets;
  sets.reserve(paths.size());
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> bytes = ReadWholeFile(path);
    if (!bytes.ok()) return bytes.status();
    sets.push_back(*std::move(bytes));
  }
  return FromSets(sets, paths);
}

absl::StatusOr<std::unique_ptr<DescriptorRegistry>>
DescriptorRegistry::FromSets(const std::vector<std::string>& sets,
                             const std::vector<std::string>& names) {
  if (sets.empty()) {
    return absl::InvalidArgumentError("no descriptor set given");
  }
  if (sets.size() != names.size()) {
    return absl::InvalidArgumentError(
        "descriptor sets and their names differ in number");
  }
  std::unique_ptr<DescriptorRegistry> registry(new DescriptorRegistry());
  PoolBuilder builder(&registry->pool_);
  for (size_t i = 0; i < sets.size(); ++i) {
    if (absl::Status s = builder.Add(sets[i], names[i]); !s.ok()) return s;
  }
  if (absl::Status s = builder.BuildAll(); !s.ok()) return s;
  return registry;
}

absl::StatusOr<const google::protobuf::Descriptor*> DescriptorRegistry::Find(
    std::string_view full_name) const {
  const google::protobuf::Descriptor* d =
      pool_.FindMessageTypeByName(std::string(full_name));
  if (d == nullptr) {
    return absl::NotFoundError(absl::StrCat("message type \"", AV(full_name),
                                            "\" is not in the descriptor set"));
  }
  return d;
}

absl::StatusOr<const google::protobuf::Message*> DescriptorRegistry::Prototype(
    std::string_view full_name) const {
  absl::StatusOr<const google::protobuf::Descriptor*> d = Find(full_name);
  if (!d.ok()) return d.status();
  return factory_.GetPrototype(*d);
}

}  // namespace sift::plugin
