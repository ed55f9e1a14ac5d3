#include "broker/plugin/chain.h"

#include <time.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"
#include "broker/base/quoted_text.h"

namespace sift::plugin {
namespace {

uint64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u +
         static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Chain>> Chain::Build(
    const Registry& registry, const std::vector<StageSpec>& specs,
    std::string_view where, const CountersFor& counters_for) {
  auto chain = std::make_unique<Chain>();
  for (size_t i = 0; i < specs.size(); ++i) {
    const StageSpec& spec = specs[i];
    auto prefix = [&] {
      return absl::StrCat(AV(where), " plugin ", i + 1, " (",
                          Bounded(spec.plugin), "): ");
    };
    absl::StatusOr<Registry::Entry> entry = registry.Find(spec.plugin);
    if (!entry.ok()) {
      return absl::Status(entry.status().code(),
                          absl::StrCat(prefix(), entry.status().message()));
    }
    Stage stage;
    stage.name = spec.plugin;
    if (entry->filter != nullptr) {
      auto made = entry->filter->Create(spec.config);
      if (!made.ok()) {
        return absl::Status(made.status().code(),
                            absl::StrCat(prefix(), made.status().message()));
      }
      stage.filter = *std::move(made);
    } else {
      auto made = entry->transform->Create(spec.config);
      if (!made.ok()) {
        return absl::Status(made.status().code(),
                            absl::StrCat(prefix(), made.status().message()));
      }
      stage.transform = *std::move(made);
    }
    stage.counters = counters_for(spec.plugin, i);
    if (stage.counters == nullptr) {
      stage.counters = std::make_shared<StageCounters>();
    }
    chain->stages_.push_back(std::move(stage));
  }
  return chain;
}

void Chain::Run(Message message, const CallContext& context,
                std::vector<Message>* out, std::vector<Failure>* failures) {
  out->clear();
  failures->clear();
  out->push_back(std::move(message));
  for (Stage& stage : stages_) {
    next_.clear();
    StageCounters& c = *stage.counters;
    for (Message& m : *out) {
      ++c.calls;
      const uint64_t start = MonotonicNanos();
      if (stage.filter != nullptr) {
        absl::StatusOr<Verdict> verdict = stage.filter->Apply(m, context);
        c.nanos += MonotonicNanos() - start;
        if (!verdict.ok()) {
          ++c.errors;
          failures->push_back({std::move(m), stage.name,
                               std::string(verdict.status().message())});
        } else if (verdict->keep) {
          ++c.passes;
          next_.push_back(std::move(m));
        } else {
          ++c.drops;
        }
        continue;
      }
      emitted_.clear();
      Message copy = m;  // kept for a dead letter should the call fail
      absl::Status s = stage.transform->Apply(std::move(m), context, &emitted_);
      c.nanos += MonotonicNanos() - start;
      if (s.ok() && next_.size() + emitted_.size() > kMaxChainOutputs) {
        s = absl::ResourceExhaustedError(
            absl::StrCat("emitted more than ", kMaxChainOutputs,
                         " messages for one input"));
      }
      if (!s.ok()) {
        ++c.errors;
        failures->push_back(
            {std::move(copy), stage.name, std::string(s.message())});
        continue;
      }
      if (emitted_.empty()) {
        ++c.drops;
        continue;
      }
      ++c.passes;
      for (Message& e : emitted_) next_.push_back(std::move(e));
    }
    out->swap(next_);
    if (out->empty()) break;
  }
}

}  // namespace sift::plugin
