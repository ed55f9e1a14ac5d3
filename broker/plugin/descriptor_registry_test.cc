#include "broker/plugin/descriptor_registry.h"

#include <google/protobuf/descriptor.pb.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "broker/plugin/payload_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::HasSubstr;
using testing::kEnvelopeOnlySet;
using testing::kEnvelopeSet;
using testing::kOrderSet;
using testing::ReadFileOrDie;

// Writes `bytes` to a file under the test's temporary directory.
std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(DescriptorRegistryTest, FindsTypesOfALoadedSet) {
  auto registry = DescriptorRegistry::Load({kOrderSet});
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto order = (*registry)->Find("shop.Order");
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ((*order)->full_name(), "shop.Order");
  EXPECT_TRUE((*registry)->Find("shop.Customer").ok());
  auto missing = (*registry)->Find("shop.Nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("shop.Nope"));
  // An enum is not a message type.
  EXPECT_FALSE((*registry)->Find("shop.Tier").ok());
}

TEST(DescriptorRegistryTest, PrototypeMakesMessagesOfTheType) {
  auto registry = DescriptorRegistry::Load({kOrderSet});
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto prototype = (*registry)->Prototype("shop.Order");
  ASSERT_TRUE(prototype.ok()) << prototype.status();
  std::unique_ptr<google::protobuf::Message> m((*prototype)->New());
  EXPECT_EQ(m->GetDescriptor(), *(*registry)->Find("shop.Order"));
  // The same prototype every time.
  EXPECT_EQ(*prototype, *(*registry)->Prototype("shop.Order"));
  EXPECT_EQ((*registry)->Prototype("x.Y").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(DescriptorRegistryTest, MissingFileIsNotFoundNamingIt) {
  auto registry = DescriptorRegistry::Load({"no/such/file.pb"});
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(registry.status().message(), HasSubstr("no/such/file.pb"));
}

TEST(DescriptorRegistryTest, GarbageFileIsInvalidArgumentNamingIt) {
  for (const std::string& bytes :
       {std::string("this is not a descriptor set\n"), std::string(""),
        std::string("\xff\xff\xff\xff", 4)}) {
    const std::string path = WriteTemp("garbage.pb", bytes);
    auto registry = DescriptorRegistry::Load({path});
    EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument)
        << registry.status();
    EXPECT_THAT(registry.status().message(), HasSubstr(path));
  }
}

TEST(DescriptorRegistryTest, NoSetIsAnError) {
  EXPECT_EQ(DescriptorRegistry::Load({}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DescriptorRegistryTest, UnresolvedImportNamesTheFileAndTheImport) {
  auto registry = DescriptorRegistry::Load({kEnvelopeOnlySet});
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(registry.status().message(), HasSubstr(kEnvelopeOnlySet));
  EXPECT_THAT(registry.status().message(),
              HasSubstr("imports broker/plugin/testdata/order.proto"));
  EXPECT_THAT(registry.status().message(), HasSubstr("--include_imports"));
}

TEST(DescriptorRegistryTest, SeveralSetsResolveEachOtherInAnyOrder) {
  // envelope_only.pb needs order.proto, which comes in the second set.
  auto registry = DescriptorRegistry::Load({kEnvelopeOnlySet, kOrderSet});
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto envelope = (*registry)->Find("shop.Envelope");
  ASSERT_TRUE(envelope.ok());
  EXPECT_EQ((*envelope)->FindFieldByName("order")->message_type(),
            *(*registry)->Find("shop.Order"));
}

TEST(DescriptorRegistryTest, IdenticalFileInTwoSetsIsLoadedOnce) {
  // envelope.pb holds order.proto too (--include_imports).
  auto registry = DescriptorRegistry::Load({kOrderSet, kEnvelopeSet});
  ASSERT_TRUE(registry.ok()) << registry.status();
  EXPECT_TRUE((*registry)->Find("shop.Envelope").ok());
  EXPECT_TRUE((*registry)->Find("shop.Order").ok());
}

TEST(DescriptorRegistryTest, DifferentFilesOfTheSameNameAreRefused) {
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(ReadFileOrDie(kOrderSet)));
  google::protobuf::FileDescriptorSet changed = set;
  changed.mutable_file(0)->add_message_type()->set_name("Extra");
  auto registry = DescriptorRegistry::FromSets(
      {set.SerializeAsString(), changed.SerializeAsString()},
      {"first.pb", "second.pb"});
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(registry.status().message(), HasSubstr("second.pb"));
  EXPECT_THAT(registry.status().message(), HasSubstr("first.pb"));
  EXPECT_THAT(registry.status().message(),
              HasSubstr("broker/plugin/testdata/order.proto"));
}

TEST(DescriptorRegistryTest, FileProtobufRefusesIsNamedWithItsReason) {
  google::protobuf::FileDescriptorSet set;
  google::protobuf::FileDescriptorProto* file = set.add_file();
  file->set_name("bad.proto");
  file->set_package("bad");
  google::protobuf::DescriptorProto* m = file->add_message_type();
  m->set_name("M");
  google::protobuf::FieldDescriptorProto* f = m->add_field();
  f->set_name("x");
  f->set_number(1);
  f->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  f->set_type_name(".bad.Missing");
  auto registry =
      DescriptorRegistry::FromSets({set.SerializeAsString()}, {"bad.pb"});
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(registry.status().message(), HasSubstr("bad.pb"));
  EXPECT_THAT(registry.status().message(), HasSubstr("bad.proto"));
  EXPECT_THAT(registry.status().message(), HasSubstr("bad.Missing"));
}

}  // namespace
}  // namespace sift::plugin
