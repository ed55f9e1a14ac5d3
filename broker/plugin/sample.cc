#include "broker/plugin/sample.h"

#include <cstdint>
#include <random>

#include "absl/random/bernoulli_distribution.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sift::plugin {
namespace {

class SampleEvery : public Filter {
 public:
  explicit SampleEvery(uint64_t every) : every_(every) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    const bool keep = count_ == 0;
    if (++count_ == every_) count_ = 0;
    return keep ? Verdict::Keep() : Verdict::Drop("sampled_out");
  }

 private:
  const uint64_t every_;  // constant after construction
  uint64_t count_ = 0;    // messages since the last one kept, mod every_
};

class SampleRandom : public Filter {
 public:
  explicit SampleRandom(double probability) : probability_(probability) {}
  SampleRandom(double probability, uint64_t seed)
      : probability_(probability),
        gen_(std::seed_seq{static_cast<uint32_t>(seed),
                           static_cast<uint32_t>(seed >> 32)}) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    return absl::Bernoulli(gen_, probability_) ? Verdict::Keep()
                                               : Verdict::Drop("sampled_out");
  }

 private:
  const double probability_;  // constant after construction
  absl::BitGen gen_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Filter>> SampleFactory::Create(
    const PluginConfig& config) const {
  if (absl::Status s = config.CheckOnly({"every", "probability", "seed"});
      !s.ok()) {
    return s;
  }
  const bool has_every = config.Find("every") != nullptr;
  const bool has_probability = config.Find("probability") != nullptr;
  if (has_every == has_probability) {
    return absl::InvalidArgumentError(
        "sample takes exactly one of the settings \"every\" and "
        "\"probability\"");
  }
  if (has_every) {
    if (config.Find("seed") != nullptr) {
      return absl::InvalidArgumentError(
          "setting \"seed\": only applies with \"probability\"");
    }
    absl::StatusOr<int64_t> every = config.GetInt("every");
    if (!every.ok()) return every.status();
    if (*every < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "setting \"every\": ", *every, " is out of range (at least 1)"));
    }
    return std::make_unique<SampleEvery>(static_cast<uint64_t>(*every));
  }
  absl::StatusOr<double> probability = config.GetDouble("probability", 0);
  if (!probability.ok()) return probability.status();
  if (!(*probability >= 0 && *probability <= 1)) {  // NaN fails too
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"probability\": ", *probability,
                     " is out of range (0 to 1)"));
  }
  if (const std::string* seed_text = config.Find("seed")) {
    uint64_t seed;
    if (!absl::SimpleAtoi(*seed_text, &seed)) {
      return absl::InvalidArgumentError(
          absl::StrCat("setting \"seed\": \"", *seed_text,
                       "\" is not an unsigned 64-bit integer"));
    }
    return std::make_unique<SampleRandom>(*probability, seed);
  }
  return std::make_unique<SampleRandom>(*probability);
}

}  // namespace sift::plugin
