// What the command-line parsers of siftd, sift and sift-bench say when a
// flag that takes a value is followed by another flag instead: in `--queue
// --ack`, taking "--ack" as the group's name would leave the subscription
// without acks, so it is refused, and a value that does start with "--" is
// written --flag=--value. Plain functions; any thread.
#ifndef SIFT_BROKER_BASE_FLAG_TEXT_H_
#define SIFT_BROKER_BASE_FLAG_TEXT_H_

#include <string>
#include <string_view>

namespace sift {

// Why `next`, the argument after `flag` (as written, e.g. "--queue"), is not
// its value: " (--ack after it is a flag; a value that starts with -- is
// written --queue=--ack)", for the caller's "... needs a value". Empty when
// `next` may be the value (it does not start with "--").
inline std::string FlagInValuesPlace(std::string_view flag,
                                     std::string_view next) {
  if (next.substr(0, 2) != "--") return "";
  std::string why = " (";
  why.append(next);
  why.append(" after it is a flag; a value that starts with -- is written ");
  why.append(flag);
  why.append("=");
  why.append(next);
  why.append(")");
  return why;
}

}  // namespace sift

#endif  // SIFT_BROKER_BASE_FLAG_TEXT_H_
