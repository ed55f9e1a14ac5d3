#include "broker/plugin/payload_testing.h"

#include <google/protobuf/text_format.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sift::plugin::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "payload_testing: %s\n", what.c_str());
  std::abort();
}

}  // namespace

const DescriptorRegistry& OrderRegistry() {
  static const DescriptorRegistry* const registry = [] {
    auto loaded = DescriptorRegistry::Load({kOrderSet});
    if (!loaded.ok()) Die(std::string(loaded.status().message()));
    return loaded->release();
  }();
  return *registry;
}

std::unique_ptr<google::protobuf::Message> NewMessage(std::string_view type) {
  auto prototype = OrderRegistry().Prototype(type);
  if (!prototype.ok()) Die(std::string(prototype.status().message()));
  return std::unique_ptr<google::protobuf::Message>((*prototype)->New());
}

std::unique_ptr<google::protobuf::Message> FromText(std::string_view type,
                                                    std::string_view text) {
  std::unique_ptr<google::protobuf::Message> message = NewMessage(type);
  if (!google::protobuf::TextFormat::ParseFromString(std::string(text),
                                                     message.get())) {
    Die("bad text for " + std::string(type) + ": " + std::string(text));
  }
  return message;
}

std::string Encode(std::string_view type, std::string_view text) {
  return FromText(type, text)->SerializeAsString();
}

std::string ToText(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(message, &out);
  // Single-line mode leaves a trailing space.
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot open " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace sift::plugin::testing
