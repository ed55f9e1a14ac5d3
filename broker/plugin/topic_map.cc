#include "broker/plugin/topic_map.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift::plugin {
namespace {

constexpr int kMaxCaptures = 9;  // $1..$9

using Captures = std::array<std::string_view, kMaxCaptures>;

// One token of `from`.
struct FromToken {
  enum Kind { kLiteral, kStar, kRest };
  Kind kind;
  std::string text;  // kLiteral only
};

// One piece of `to`: literal bytes, or a capture (0-based) when capture >= 0.
struct ToPiece {
  std::string literal;
  int capture = -1;
};

// Returns the token starting at *pos and moves *pos past it and its dot; at
// the end *pos is s.size() + 1. REQUIRES: *pos <= s.size().
std::string_view NextToken(std::string_view s, size_t* pos) {
  const size_t dot = s.find('.', *pos);
  const size_t end = dot == std::string_view::npos ? s.size() : dot;
  std::string_view token = s.substr(*pos, end - *pos);
  *pos = end + 1;
  return token;
}

class TopicMap : public Transform {
 public:
  TopicMap(std::vector<FromToken> from, std::vector<ToPiece> to,
           size_t to_literal_bytes, topic::Limits limits)
      : from_(std::move(from)),
        to_(std::move(to)),
        to_literal_bytes_(to_literal_bytes),
        limits_(limits) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    Captures captures;
    if (Match(message.topic(), &captures)) {
      std::string mapped = Expand(captures);
      if (absl::Status s = topic::ValidateTopic(mapped, limits_);
          ABSL_PREDICT_FALSE(!s.ok())) {
        return absl::InvalidArgumentError(
            absl::StrCat("topic_map: \"", AV(message.topic()),
                         "\" maps to an invalid topic: ", s.message()));
      }
      message.set_topic(std::move(mapped));
    }
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  // True if `topic` matches `from`; then the first kMaxCaptures wildcard
  // captures are in *captures (views into `topic`).
  bool Match(std::string_view topic, Captures* captures) const {
    size_t pos = 0;
    int n = 0;
    for (const FromToken& want : from_) {
      if (pos >= topic.size()) return false;  // topic ran out first
      if (want.kind == FromToken::kRest) {
        if (n < kMaxCaptures) (*captures)[n] = topic.substr(pos);
        return true;
      }
      const std::string_view have = NextToken(topic, &pos);
      if (want.kind == FromToken::kStar) {
        if (n < kMaxCaptures) (*captures)[n++] = have;
      } else if (have != want.text) {
        return false;
      }
    }
    return pos > topic.size();  // both ran out together
  }

  std::string Expand(const Captures& captures) const {
    size_t size = to_literal_bytes_;
    for (const ToPiece& piece : to_) {
      if (piece.capture >= 0) size += captures[piece.capture].size();
    }
    std::string out;
    out.reserve(size);
    for (const ToPiece& piece : to_) {
      if (piece.capture >= 0) {
        out.append(captures[piece.capture]);
      } else {
        out.append(piece.literal);
      }
    }
    return out;
  }

  // Constant after construction.
  const std::vector<FromToken> from_;
  const std::vector<ToPiece> to_;
  const size_t to_literal_bytes_;
  const topic::Limits limits_;
};

// Splits a valid pattern into tokens.
std::vector<FromToken> ParseFrom(std::string_view from, int* wildcards) {
  std::vector<FromToken> out;
  *wildcards = 0;
  size_t pos = 0;
  while (pos <= from.size()) {
    const std::string_view token = NextToken(from, &pos);
    if (token == "*") {
      out.push_back({FromToken::kStar, {}});
      ++*wildcards;
    } else if (token == ">") {
      out.push_back({FromToken::kRest, {}});
      ++*wildcards;
    } else {
      out.push_back({FromToken::kLiteral, std::string(token)});
    }
  }
  return out;
}

// Splits `to` into literal runs and capture references.
absl::StatusOr<std::vector<ToPiece>> ParseTo(std::string_view to,
                                             int wildcards) {
  std::vector<ToPiece> out;
  std::string literal;
  for (size_t i = 0; i < to.size(); ++i) {
    const char c = to[i];
    const char next = i + 1 < to.size() ? to[i + 1] : '\0';
    if (c != '$' || next < '0' || next > '9') {
      literal.push_back(c);
      continue;
    }
    const int n = next - '0';
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("setting \"to\": \"", AV(to), "\" uses $0 at offset ", i,
                       " (captures are numbered from $1)"));
    }
    if (n > wildcards) {
      return absl::InvalidArgumentError(absl::StrCat(
          "setting \"to\": \"", AV(to), "\" uses $", n, " but \"from\" has ",
          wildcards, wildcards == 1 ? " wildcard" : " wildcards"));
    }
    if (!literal.empty()) out.push_back({std::move(literal), -1});
    literal.clear();
    out.push_back({{}, n - 1});
    ++i;
  }
  if (!literal.empty()) out.push_back({std::move(literal), -1});
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Transform>> TopicMapFactory::Create(
    const PluginConfig& config) const {
  if (absl::Status s = config.CheckOnly({"from", "to"}); !s.ok()) return s;
  absl::StatusOr<std::string> from = config.GetString("from");
  if (!from.ok()) return from.status();
  absl::StatusOr<std::string> to = config.GetString("to");
  if (!to.ok()) return to.status();

  if (absl::Status s = topic::ValidatePattern(*from, limits_); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"from\": ", s.message()));
  }
  int wildcards = 0;
  std::vector<FromToken> from_tokens = ParseFrom(*from, &wildcards);
  absl::StatusOr<std::vector<ToPiece>> pieces = ParseTo(*to, wildcards);
  if (!pieces.ok()) return pieces.status();

  // "$n" is itself a valid token (or part of one), so `to` as written has the
  // shape of its results: check it as a literal topic (no wildcards, no empty
  // tokens, token count). A capture is at least one byte and one token, so
  // the shortest result is `to` with each "$n" one byte long.
  size_t literal_bytes = 0;
  size_t references = 0;
  for (const ToPiece& piece : *pieces) {
    literal_bytes += piece.literal.size();
    references += piece.capture >= 0;
  }
  topic::Limits shape = limits_;
  shape.max_length = std::max<uint32_t>(limits_.max_length, to->size());
  if (absl::Status s = topic::ValidateTopic(*to, shape); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"to\": ", s.message()));
  }
  if (literal_bytes + references > limits_.max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"to\": \"", AV(*to),
                     "\" gives topics of at least ", literal_bytes + references,
                     " bytes, over the limit of ", limits_.max_length));
  }
  return std::make_unique<TopicMap>(std::move(from_tokens), *std::move(pieces),
                                    literal_bytes, limits_);
}

}  // namespace sift::plugin
