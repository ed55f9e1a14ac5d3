#include "broker/plugin/dynamic_plugin.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "broker/plugin/sift_plugin.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Runfiles paths (data dependencies), relative to the test's working
// directory.
constexpr char kExample[] = "broker/plugin/examples/libsift_example_plugin.so";
constexpr char kBadVersion[] =
    "broker/plugin/examples/libsift_bad_version_plugin.so";
constexpr char kNoFilter[] =
    "broker/plugin/examples/libsift_bad_nofilter_plugin.so";
constexpr char kNoVersion[] =
    "broker/plugin/examples/libsift_bad_noversion_plugin.so";
constexpr char kMisbehave[] =
    "broker/plugin/examples/libsift_bad_misbehave_plugin.so";

PluginConfig Config(std::vector<std::pair<std::string, std::string>> kv) {
  return PluginConfig(std::move(kv));
}

LoadedPlugin LoadExample() {
  absl::StatusOr<LoadedPlugin> loaded = LoadDynamicPlugin(kExample);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return std::move(loaded).value();
}

TEST(DynamicPluginTest, LoadsTheExampleAndDescribesIt) {
  LoadedPlugin p = LoadExample();
  EXPECT_EQ(p.name, "example");
  EXPECT_EQ(p.path, kExample);
  EXPECT_THAT(p.description, HasSubstr("keyword"));
  ASSERT_NE(p.filter_factory, nullptr);
  ASSERT_NE(p.transform_factory, nullptr);
  EXPECT_EQ(p.filter_factory->name(), "example");
  EXPECT_EQ(p.transform_factory->name(), "example");
}

TEST(DynamicPluginTest, FilterDropsMessagesWithTheKeyword) {
  LoadedPlugin p = LoadExample();
  auto filter = p.filter_factory->Create(Config({{"keyword", "secret"}}));
  ASSERT_TRUE(filter.ok()) << filter.status();
  CallContext ctx;

  Message clean("orders.eu", "", {{"k", "v"}}, "nothing to see");
  absl::StatusOr<Verdict> v = (*filter)->Apply(clean, ctx);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);

  Message dirty("orders.eu", "", {}, "the secret plan");
  v = (*filter)->Apply(dirty, ctx);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->keep);
  EXPECT_EQ(v->reason, "keyword");

  // The keyword at either end, and an empty payload.
  EXPECT_FALSE((*filter)->Apply(Message("t", "", {}, "secret"), ctx)->keep);
  EXPECT_FALSE((*filter)->Apply(Message("t", "", {}, "a secret"), ctx)->keep);
  EXPECT_TRUE((*filter)->Apply(Message("t", "", {}, ""), ctx)->keep);
  EXPECT_TRUE((*filter)->Apply(Message("t", "", {}, "secre"), ctx)->keep);
}

TEST(DynamicPluginTest, BadConfigsAreRefusedByTheLibrary) {
  LoadedPlugin p = LoadExample();
  auto missing = p.filter_factory->Create(PluginConfig());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("example: missing setting \"keyword\""));

  auto unknown =
      p.filter_factory->Create(Config({{"keyword", "x"}, {"kw", "y"}}));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("kw"));

  auto empty = p.filter_factory->Create(Config({{"keyword", ""}}));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);

  // A filter's key is not a transform's.
  auto wrong_kind = p.transform_factory->Create(Config({{"keyword", "x"}}));
  EXPECT_EQ(wrong_kind.status().code(), absl::StatusCode::kInvalidArgument);

  auto bad_bool = p.transform_factory->Create(Config({{"uppercase", "yes"}}));
  EXPECT_EQ(bad_bool.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_bool.status().message(), HasSubstr("uppercase"));

  auto half_header = p.transform_factory->Create(Config({{"header", "x"}}));
  EXPECT_EQ(half_header.status().code(), absl::StatusCode::kInvalidArgument);

  // A NUL byte cannot cross as a C string: refused before the library.
  auto nul =
      p.filter_factory->Create(Config({{"keyword", std::string("a\0b", 3)}}));
  EXPECT_EQ(nul.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nul.status().message(), HasSubstr("NUL"));
}

TEST(DynamicPluginTest, TransformUppercasesAndAddsAHeader) {
  LoadedPlugin p = LoadExample();
  auto t = p.transform_factory->Create(
      Config({{"header", "x-seen"}, {"value", "yes"}}));
  ASSERT_TRUE(t.ok()) << t.status();
  std::string topic = "orders.eu";
  std::string payload = "hello, World 42";
  Message in(topic, "_INBOX.r", {{"a", "1"}, {"a", "2"}}, payload);
  std::vector<Message> out;
  ASSERT_TRUE((*t)->Apply(in, CallContext(), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic(), "orders.eu");
  EXPECT_EQ(out[0].reply_to(), "_INBOX.r");
  EXPECT_EQ(out[0].payload(), "HELLO, WORLD 42");
  EXPECT_THAT(out[0].headers(),
              ElementsAre(HeaderField{"a", "1"}, HeaderField{"a", "2"},
                          HeaderField{"x-seen", "yes"}));
  // Unchanged parts keep the input's bytes: no copy of the topic.
  EXPECT_FALSE(out[0].topic_changed());
  EXPECT_EQ(out[0].topic().data(), topic.data());
  EXPECT_TRUE(out[0].payload_changed());
}

TEST(DynamicPluginTest, InvalidEmittedHeaderKeyFailsTheMessage) {
  LoadedPlugin p = LoadExample();
  // The example does not check header names; the host checks what it emits.
  auto t = p.transform_factory->Create(
      Config({{"header", "bad key"}, {"value", "v"}}));
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<Message> out;
  absl::Status s = (*t)->Apply(Message("t", "", {}, "x"), CallContext(), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("example: emitted a malformed message"));
  EXPECT_THAT(out, IsEmpty());
}

TEST(DynamicPluginTest, PassThroughKeepsTheInputBytes) {
  LoadedPlugin p = LoadExample();
  auto t = p.transform_factory->Create(Config({{"uppercase", "false"}}));
  ASSERT_TRUE(t.ok()) << t.status();
  std::string payload(1000, 'x');
  Message in("t", "", {{"k", "v"}}, payload);
  std::vector<Message> out;
  ASSERT_TRUE((*t)->Apply(in, CallContext(), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].payload_changed());
  EXPECT_EQ(out[0].payload().data(), payload.data());
  EXPECT_THAT(out[0].headers(), ElementsAre(HeaderField{"k", "v"}));
}

TEST(DynamicPluginTest, TransformSplitsIntoSeveralMessages) {
  LoadedPlugin p = LoadExample();
  auto t = p.transform_factory->Create(Config({{"split", ","}}));
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<Message> out;
  ASSERT_TRUE(
      (*t)->Apply(Message("t", "", {}, "a,bb,,c"), CallContext(), &out).ok());
  std::vector<std::string> payloads;
  for (const Message& m : out) {
    EXPECT_EQ(m.topic(), "t");
    payloads.emplace_back(m.payload());
  }
  EXPECT_THAT(payloads, ElementsAre("A", "BB", "", "C"));

  // The instance's buffers are reused: a second, longer message is whole.
  out.clear();
  std::string longer(5000, 'q');
  ASSERT_TRUE(
      (*t)->Apply(Message("t", "", {}, longer), CallContext(), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload(), std::string(5000, 'Q'));

  // An empty payload is one empty piece.
  out.clear();
  ASSERT_TRUE((*t)->Apply(Message("t", "", {}, ""), CallContext(), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].payload(), IsEmpty());
}

TEST(DynamicPluginTest, PluginsOutliveTheLoadedPlugin) {
  std::unique_ptr<Filter> filter;
  {
    LoadedPlugin p = LoadExample();
    auto f = p.filter_factory->Create(Config({{"keyword", "x"}}));
    ASSERT_TRUE(f.ok());
    filter = std::move(f).value();
  }  // the LoadedPlugin and its factories are gone; the library stays open
  auto v = filter->Apply(Message("t", "", {}, "xyz"), CallContext());
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->keep);
}

TEST(DynamicPluginTest, LoadingTwiceGivesIndependentPlugins) {
  LoadedPlugin a = LoadExample();
  LoadedPlugin b = LoadExample();
  auto fa = a.filter_factory->Create(Config({{"keyword", "a"}}));
  auto fb = b.filter_factory->Create(Config({{"keyword", "b"}}));
  ASSERT_TRUE(fa.ok() && fb.ok());
  Message m("t", "", {}, "a");
  EXPECT_FALSE((*fa)->Apply(m, CallContext())->keep);
  EXPECT_TRUE((*fb)->Apply(m, CallContext())->keep);
}

TEST(DynamicPluginTest, WrongAbiVersionIsRefused) {
  auto loaded = LoadDynamicPlugin(kBadVersion);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(),
              HasSubstr(std::string("plugin ") + kBadVersion +
                        " was built for ABI 999, siftd speaks 1"));
}

TEST(DynamicPluginTest, MissingFunctionIsRefusedNamingIt) {
  auto loaded = LoadDynamicPlugin(kNoFilter);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(),
              HasSubstr("exports no sift_plugin_filter"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("undefined symbol"));
}

TEST(DynamicPluginTest, MissingVersionSymbolIsRefused) {
  auto loaded = LoadDynamicPlugin(kNoVersion);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(),
              HasSubstr("exports no sift_plugin_abi_version"));
}

TEST(DynamicPluginTest, NonexistentPathIsAnError) {
  auto loaded = LoadDynamicPlugin("broker/plugin/examples/no_such.so");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(), HasSubstr("cannot load plugin"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("no_such.so"));
}

TEST(DynamicPluginTest, BareNameIsNotSearchedInTheLibraryPath) {
  // libm.so.6 exists in the system's library path, but a plugin path is
  // relative to the working directory.
  auto loaded = LoadDynamicPlugin("libm.so.6");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(), HasSubstr("./libm.so.6"));
}

TEST(DynamicPluginTest, NotASharedObjectIsAnError) {
  // A file that exists but is not an ELF library: the example's source.
  auto loaded = LoadDynamicPlugin("broker/plugin/examples/keyword_filter.c");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(DynamicPluginTest, PerMessageErrorsFailThatMessageOnly) {
  auto loaded = LoadDynamicPlugin(kMisbehave);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto filter = loaded->filter_factory->Create(PluginConfig());
  ASSERT_TRUE(filter.ok()) << filter.status();
  CallContext ctx;

  auto v = (*filter)->Apply(Message("t", "", {}, "error"), ctx);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(v.status().message(), "bad: asked to fail");

  v = (*filter)->Apply(Message("t", "", {}, "bad"), ctx);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.status().message(), "bad: not my format");

  v = (*filter)->Apply(Message("t", "", {}, "verdict"), ctx);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(), HasSubstr("unknown verdict 7"));

  // The error text of one call does not leak into the next.
  v = (*filter)->Apply(Message("t", "", {}, "fine"), ctx);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);
}

TEST(DynamicPluginTest, MalformedOrPartialEmitsFailTheMessage) {
  auto loaded = LoadDynamicPlugin(kMisbehave);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto t = loaded->transform_factory->Create(PluginConfig());
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<Message> out;

  // NULL data with a size: refused by emit(), and the plugin's OK after
  // ignoring that does not save the message.
  absl::Status s =
      (*t)->Apply(Message("t", "", {}, "malformed"), CallContext(), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("malformed"));
  EXPECT_THAT(out, IsEmpty());

  // Emitted, then failed: nothing is kept; the code names the failure.
  s = (*t)->Apply(Message("t", "", {}, "partial"), CallContext(), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "bad: failed (code 4)");
  EXPECT_THAT(out, IsEmpty());

  s = (*t)->Apply(Message("t", "", {}, "fine"), CallContext(), &out);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload(), "fine");
}

}  // namespace
}  // namespace sift::plugin
