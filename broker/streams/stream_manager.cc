#include "broker/streams/stream_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "broker/base/absl_view.h"
#include "broker/base/quoted_text.h"
#include "broker/protocol/codec.h"
#include "broker/topic/topic.h"
#include "proto/sift.pb.h"

namespace sift::streams {
namespace {

// Records read per Read call, and sent per consumer per Process.
constexpr size_t kReadBatch = 64;
constexpr size_t kPumpBudget = 512;
constexpr uint64_t kReadBytes = 4 << 20;
// How soon a consumer whose client's queue was full is offered records again.
constexpr int64_t kFullClientRetryMs = 2;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status MakeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(absl::StrCat("mkdir ", dir));
  }
  return absl::OkStatus();
}

// Makes the entries of directory `dir` (a file created or renamed in it)
// survive a power loss, as its files' own fsync does not.
absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", dir));
  const bool ok = fsync(fd) == 0;
  close(fd);
  if (!ok) return Errno(absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

// Writes `text` to `path` atomically (temporary file, fsync, rename, fsync
// of the directory).
absl::Status WriteFileAtomic(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
  if (fd < 0) return Errno(absl::StrCat("open ", temp));
  const ssize_t n = write(fd, text.data(), text.size());
  const bool ok = n == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(temp.c_str(), path.c_str()) != 0) {
    absl::Status s = Errno(absl::StrCat("write ", path));
    unlink(temp.c_str());
    return s;
  }
  return SyncDir(std::filesystem::path(path).parent_path().string());
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errno(absl::StrCat("open ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::Status Unknown(absl::string_view what) {
  return protocol::WireError(wire::UNKNOWN_STREAM, what);
}
// UNKNOWN_STREAM for `name`, with `note` and, when `name` could not name a
// stream at all, the rule it breaks, in parentheses.
absl::Status NoStream(std::string_view name, std::string_view note = "") {
  std::string why(note);
  if (!ValidStreamName(name)) {
    absl::StrAppend(&why, why.empty() ? "" : "; ", kStreamNameRule);
  }
  return Unknown(absl::StrCat("no stream ", Quoted(name),
                              why.empty() ? "" : absl::StrCat(" (", why, ")")));
}
absl::Status Invalid(absl::string_view what) {
  return protocol::WireError(wire::INVALID_STREAM, what);
}
absl::Status BadRequest(absl::string_view what) {
  return protocol::WireError(wire::INVALID_REQUEST, what);
}

// A held message as a file: "sift-held 1\n", then the due time and four
// length-prefixed fields (topic, reply_to, raw headers, payload).
std::string EncodeHeld(int64_t due_unix_ms, const delivery::StoredMessage& m) {
  std::string out = absl::StrCat("sift-held 1\n", due_unix_ms, "\n");
  for (std::string_view f :
       {m.topic(), m.reply_to(), m.headers(), m.payload()}) {
    absl::StrAppend(&out, f.size(), "\n");
    out.append(f);
  }
  return out;
}

bool DecodeHeld(std::string_view text, int64_t* due,
                delivery::MessageRef* m) {
  auto line = [&](std::string_view* out) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return false;
    *out = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    return true;
  };
  std::string_view magic, number;
  if (!line(&magic) || magic != "sift-held 1" || !line(&number) ||
      !absl::SimpleAtoi(AV(number), due)) {
    return false;
  }
  std::string_view fields[4];  // topic, reply_to, headers, payload
  for (std::string_view& f : fields) {
    size_t n;
    if (!line(&number) || !absl::SimpleAtoi(AV(number), &n) ||
        n > text.size()) {
      return false;
    }
    f = text.substr(0, n);
    text.remove_prefix(n);
  }
  if (!text.empty()) return false;
  *m = delivery::StoredMessage::Make(fields[0], fields[1], fields[2],
                                     fields[3]);
  return true;
}

// A stable 64-bit hash (FNV-1a) naming a topic's retained file.
std::string TopicKey(std::string_view topic) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : topic) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrCat("r-", absl::Hex(h, absl::kZeroPad16));
}

// Request/reply inboxes ("_INBOX.<client id>...", docs/protocol.md §7) are
// one client's replies: never stored, whatever a stream's subjects say.
bool IsInbox(std::string_view topic) {
  return topic.substr(0, 7) == "_INBOX.";
}

// The first subject of `a` that overlaps one of `b`'s, as "x overlaps y".
std::string Overlap(const StreamSettings& a, const StreamSettings& b) {
  for (const std::string& x : a.subjects) {
    for (const std::string& y : b.subjects) {
      if (topic::PatternsOverlap(x, y)) {
        return absl::StrCat("\"", x, "\" overlaps stream \"", b.name,
                            "\"'s \"", y, "\"");
      }
    }
  }
  return "";
}

bool ValidConsumerName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace

struct StreamManager::Stream {
  StreamSettings settings;
  std::unique_ptr<ConsumerStore> held;  // retained values, delayed messages
  bool from_config = false;
  std::string dir;
  std::unique_ptr<store::StreamLog> log;
  std::unique_ptr<ConsumerStore> store;
  std::map<std::string, uint64_t> durable;  // consumer name -> slot id
  std::map<std::string, std::string> saved;  // loaded states, not yet used
  uint64_t durable_seen = 0;
  bool failed_logged = false;
  bool store_failed_logged = false;
  // The log's dedup_ids_forgotten_early as last warned of, and when the
  // next warning may go (one a minute at most).
  uint64_t forgotten_warned = 0;
  int64_t forgotten_warn_at = INT64_MIN;
  struct Confirm {
    uint64_t seq;
    bool duplicate;
    uint32_t client;
    uint64_t request_id;
    uint64_t held_ticket;
  };
  std::deque<Confirm> confirms;
};

struct StreamManager::Slot {
  uint64_t id = 0;
  // Records read ahead of next_seq (a Read takes up to kReadBatch), so a
  // consumer sent one record per ACK does not read and checksum the same
  // records again each time.
  std::deque<store::StreamRecord> ahead;
  Stream* stream = nullptr;
  std::unique_ptr<Consumer> consumer;
  bool push = false;
  uint32_t client = 0;
  uint64_t sid = 0;
  std::deque<Pull> pulls;
  bool temporary = false;  // an unnamed FETCH's: gone when it ends
  bool read_error_logged = false;
  // The last Pump stopped at the client's full output queue (looked at
  // again after kFullClientRetryMs, through retry_at_).
  bool client_full = false;

  // Whether a due redelivery could go out now: someone to take it, room in
  // the consumer's max_in_flight and in the client's queue. Otherwise what
  // is due waits for that (an ack, a subscriber, the retry) and is no
  // deadline: siftd's loop would spin on it.
  bool CanDeliver() const {
    return (push || !pulls.empty()) && consumer->has_room() && !client_full;
  }
};

StreamManager::StreamManager(std::string data_dir, Logger log)
    : data_dir_(std::move(data_dir)), log_(std::move(log)) {}

StreamManager::~StreamManager() { Close(); }

void StreamManager::Close() {
  for (auto& s : streams_) {
    if (s->log != nullptr) s->log->Close().IgnoreError();
  }
}

absl::StatusOr<std::unique_ptr<StreamManager>> StreamManager::Open(
    std::string data_dir, const std::vector<StreamSettings>& configured,
    Logger log) {
  std::unique_ptr<StreamManager> m(
      new StreamManager(std::move(data_dir), std::move(log)));
  if (absl::Status s = MakeDir(m->data_dir_); !s.ok()) return s;
  absl::StatusOr<store::DirLock> lock = store::DirLock::Acquire(m->data_dir_);
  if (!lock.ok()) return lock.status();
  m->lock_ = *std::move(lock);
  const std::string root = absl::StrCat(m->data_dir_, "/streams");
  if (absl::Status s = MakeDir(root); !s.ok()) return s;
  std::vector<std::string> names;
  if (DIR* d = opendir(root.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n.find(".deleted") == std::string::npos) {
        names.push_back(n);
      }
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  // Configured streams first, in config order, then the others by name.
  for (const StreamSettings& c : configured) {
    if (absl::Status s = m->OpenStream(c, true, true); !s.ok()) return s;
  }
  for (const std::string& name : names) {
    if (m->Find(name) != nullptr) continue;
    const std::string file = absl::StrCat(root, "/", name, "/stream.toml");
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) continue;  // not a stream directory
    absl::StatusOr<StreamSettings> settings =
        StreamSettingsFromToml(*text, file);
    if (!settings.ok()) return settings.status();
    for (const auto& other : m->streams_) {
      std::string overlap = Overlap(*settings, other->settings);
      if (!overlap.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stream \"", settings->name, "\" (made by a client, in ", file,
            "): subject ", overlap,
            " from the config file; change one of them, or delete the "
            "stream's directory"));
      }
    }
    if (absl::Status s = m->OpenStream(*std::move(settings), false, false);
        !s.ok()) {
      return s;
    }
  }
  return m;
}

absl::Status StreamManager::OpenStream(StreamSettings settings,
                                       bool from_config, bool create) {
  auto s = std::make_unique<Stream>();
  s->dir = absl::StrCat(data_dir_, "/streams/", settings.name);
  if (absl::Status st = MakeDir(s->dir); !st.ok()) return st;
  if (create) {
    // Written only when it changes: a full disk must not stop a restart.
    const std::string file = absl::StrCat(s->dir, "/stream.toml");
    const std::string text = StreamSettingsToToml(settings);
    absl::StatusOr<std::string> old = ReadFile(file);
    if (!old.ok() || *old != text) {
      if (absl::Status st = WriteFileAtomic(file, text); !st.ok()) return st;
      // And the stream's directory in streams/, for a new stream.
      if (absl::Status st = SyncDir(absl::StrCat(data_dir_, "/streams"));
          !st.ok()) {
        return st;
      }
    }
  }
  store::RecoveryReport report;
  absl::StatusOr<std::unique_ptr<store::StreamLog>> log = store::StreamLog::Open(
      LogOptionsFor(settings, absl::StrCat(s->dir, "/log")), &report);
  if (!log.ok()) {
    return absl::Status(log.status().code(),
                        absl::StrCat("stream \"", settings.name, "\": ",
                                     log.status().message()));
  }
  if (report.truncated()) {
    log_(true, "stream recovered: torn or corrupt tail cut",
         {{"stream", settings.name},
          {"file", report.file},
          {"offset", absl::StrCat(report.offset)},
          {"bytes_cut", absl::StrCat(report.truncated_bytes)},
          {"reason", report.reason}});
  }
  s->log = *std::move(log);
  absl::StatusOr<std::unique_ptr<ConsumerStore>> store =
      ConsumerStore::Open(absl::StrCat(s->dir, "/consumers"));
  if (!store.ok()) return store.status();
  s->store = *std::move(store);
  absl::StatusOr<std::map<std::string, std::string>> saved = s->store->Load();
  if (!saved.ok()) return saved.status();
  s->saved = *std::move(saved);
  absl::StatusOr<std::unique_ptr<ConsumerStore>> held =
      ConsumerStore::Open(absl::StrCat(s->dir, "/held"));
  if (!held.ok()) return held.status();
  s->held = *std::move(held);
  absl::StatusOr<std::map<std::string, std::string>> held_files =
      s->held->Load();
  if (!held_files.ok()) return held_files.status();
  for (const auto& [key, text] : *held_files) {
    delivery::MessageRef m;
    int64_t due = 0;
    if (!DecodeHeld(text, &due, &m)) {
      log_(true, "held message unreadable: removed",
           {{"stream", settings.name}, {"file", key}});
      s->held->Remove(key);
      continue;
    }
    loaded_held_.push_back(HeldMessage{settings.name, key, due, std::move(m)});
  }
  s->durable_seen = s->log->DurableSeq();
  s->settings = std::move(settings);
  s->from_config = from_config;
  // Durable consumers exist from their saved state on (STREAM INFO lists
  // them before anyone attaches).
  Stream* raw = s.get();
  streams_.push_back(std::move(s));
  StreamsChanged();
  for (const auto& [name, state] : raw->saved) {
    uint64_t floor;
    std::vector<uint64_t> acked;
    if (absl::Status st = Consumer::ParseState(state, &floor, &acked);
        !st.ok()) {
      return absl::DataLossError(absl::StrCat(
          raw->dir, "/consumers/", name, ".state: ", st.message()));
    }
    if (floor > raw->log->LastSeq()) {
      // Acknowledged past the end: records it saw were lost (a machine
      // crash with fsync=never). Its position follows the log, so records
      // appended from now on (which reuse those seqs) reach it.
      log_(true, "consumer position past the stream's end: moved back",
           {{"stream", raw->settings.name},
            {"consumer", name},
            {"ack_floor", absl::StrCat(floor)},
            {"last_seq", absl::StrCat(raw->log->LastSeq())}});
      floor = raw->log->LastSeq();
      acked.clear();
    }
    auto slot = std::make_unique<Slot>();
    slot->id = next_slot_++;
    slot->stream = raw;
    slot->consumer = std::make_unique<Consumer>(name, floor, acked);
    raw->durable[name] = slot->id;
    slots_[slot->id] = std::move(slot);
  }
  raw->saved.clear();
  log_(false, "stream open",
       {{"stream", raw->settings.name},
        {"first_seq", absl::StrCat(raw->log->FirstSeq())},
        {"last_seq", absl::StrCat(raw->log->LastSeq())},
        {"consumers", absl::StrCat(raw->durable.size())},
        {"fsync", FsyncText(raw->settings)}});
  return absl::OkStatus();
}

StreamManager::Stream* StreamManager::Find(std::string_view name) const {
  for (const auto& s : streams_) {
    if (s->settings.name == name) return s.get();
  }
  return nullptr;
}

StreamManager::Stream* StreamManager::Capturing(
    std::string_view topic) const {
  if (last_captured_known_ && topic == last_captured_topic_) {
    return last_captured_;
  }
  if (auto it = capturing_.find(AV(topic)); it != capturing_.end()) {
    last_captured_topic_.assign(topic.data(), topic.size());
    last_captured_ = it->second;
    last_captured_known_ = true;
    return it->second;
  }
  Stream* found = nullptr;
  for (const auto& s : streams_) {
    for (const std::string& p : s->settings.subjects) {
      if (topic::PatternMatches(p, topic)) {
        found = s.get();
        break;
      }
    }
    if (found != nullptr) break;
  }
  if (capturing_.size() >= kCapturingCacheLimit) capturing_.clear();
  capturing_.emplace(AV(topic), found);
  last_captured_topic_.assign(topic.data(), topic.size());
  last_captured_ = found;
  last_captured_known_ = true;
  return found;
}

bool StreamManager::Captures(std::string_view topic) const {
  return !IsInbox(topic) && Capturing(topic) != nullptr;
}

void StreamManager::HandOff() {
  for (const auto& s : streams_) s->log->HandOff();
}

Capture StreamManager::Append(std::string_view topic,
                              const delivery::MessageRef& message,
                              int64_t unix_ms, std::string_view msg_id) {
  Capture c;
  Stream* s = IsInbox(topic) ? nullptr : Capturing(topic);
  if (s == nullptr) return c;
  c.captured = true;
  c.stream = s->settings.name;
  absl::Status st = s->log->Append(message, unix_ms, msg_id, &c.seq);
  if (st.ok()) return c;
  if (absl::IsAlreadyExists(st)) {
    c.duplicate = true;
    return c;
  }
  c.status = protocol::WireError(
      absl::IsInvalidArgument(st) ? wire::PAYLOAD_TOO_LARGE : wire::STORE_FULL,
      absl::StrCat("stream \"", s->settings.name,
                   "\" did not store it: ", st.message()));
  return c;
}

void StreamManager::ConfirmWhenDurable(std::string_view stream, uint64_t seq,
                                       bool duplicate, uint32_t client,
                                       uint64_t request_id,
                                       uint64_t held_ticket) {
  Stream* s = Find(stream);
  if (s == nullptr) return;
  s->confirms.push_back({seq, duplicate, client, request_id, held_ticket});
  // A duplicate's record may be durable already: no news would come.
  if (seq <= s->log->DurableSeq()) work_left_ = true;
}

// ---- Retained and delayed messages of stream topics

std::optional<std::pair<std::string, uint64_t>> StreamManager::SaveRetained(
    const delivery::MessageRef& message) {
  Stream* s = Capturing(message->topic());
  if (s == nullptr) return std::nullopt;
  const std::string key = TopicKey(message->topic());
  const uint64_t ticket = message->payload().empty()
                              ? s->held->Remove(key)
                              : s->held->Put(key, EncodeHeld(0, *message));
  return std::make_pair(s->settings.name, ticket);
}

std::optional<StreamManager::Saved> StreamManager::SaveDelayed(
    const delivery::MessageRef& message, int64_t due_unix_ms) {
  Stream* s = Capturing(message->topic());
  if (s == nullptr) return std::nullopt;
  // Unique across restarts: the time it was made and a counter.
  const std::string key = absl::StrCat("d-", absl::ToUnixMillis(absl::Now()),
                                       "-", ++next_held_key_);
  const uint64_t ticket = s->held->Put(key, EncodeHeld(due_unix_ms, *message));
  return Saved{s->settings.name, key, ticket};
}

void StreamManager::ForgetDelayed(const std::string& stream,
                                  const std::string& key) {
  if (Stream* s = Find(stream)) s->held->Remove(key);
}

std::optional<std::pair<std::string, uint64_t>> StreamManager::PendingHeldWrite(
    const std::string& name) {
  Stream* s = Find(name);
  if (s == nullptr || s->held == nullptr ||
      s->held->DurableTicket() >= s->held->LastTicket()) {
    return std::nullopt;
  }
  return std::make_pair(s->settings.name, s->held->LastTicket());
}

namespace {

// The (time made, counter) of a delayed message's key "d-<ms>-<n>"
// (SaveDelayed): the order it was published in. {0, 0} for another key.
std::pair<int64_t, uint64_t> PublishOrder(std::string_view key) {
  std::pair<int64_t, uint64_t> order{0, 0};
  if (key.substr(0, 2) != "d-") return order;
  key.remove_prefix(2);
  const size_t dash = key.find('-');
  if (dash == std::string_view::npos ||
      !absl::SimpleAtoi(AV(key.substr(0, dash)), &order.first) ||
      !absl::SimpleAtoi(AV(key.substr(dash + 1)), &order.second)) {
    return {0, 0};
  }
  return order;
}

}  // namespace

std::vector<HeldMessage> StreamManager::TakeLoadedHeld() {
  std::vector<HeldMessage> out;
  out.swap(loaded_held_);
  std::stable_sort(out.begin(), out.end(),
                   [](const HeldMessage& a, const HeldMessage& b) {
                     if (a.due_unix_ms != b.due_unix_ms) {
                       return a.due_unix_ms < b.due_unix_ms;
                     }
                     return PublishOrder(a.key) < PublishOrder(b.key);
                   });
  return out;
}

void StreamManager::AnswerWhenSaved(
    uint32_t client, uint64_t request_id,
    std::vector<std::pair<std::string, uint64_t>> tickets) {
  ack_answers_.push_back(AckAnswer{client, request_id, std::move(tickets),
                                   /*held=*/true});
  work_left_ = true;
}

// ---- STREAM commands

StreamView StreamManager::ViewOf(const Stream& s) const {
  StreamView v;
  v.settings = s.settings;
  v.from_config = s.from_config;
  v.first_seq = s.log->FirstSeq();
  v.last_seq = s.log->LastSeq();
  v.durable_seq = s.log->DurableSeq();
  v.messages = s.log->TotalRecords();
  v.bytes = s.log->TotalBytes();
  v.appended = s.log->stats().appended.load(std::memory_order_relaxed);
  v.fsyncs = s.log->stats().fsyncs.load(std::memory_order_relaxed);
  v.dedup_ids_forgotten_early =
      s.log->stats().dedup_ids_forgotten_early.load(std::memory_order_relaxed);
  for (const auto& [name, id] : s.durable) {
    const Slot& slot = *slots_.at(id);
    ConsumerView c;
    c.name = name;
    c.ack_floor = slot.consumer->ack_floor();
    c.delivered_seq = slot.consumer->delivered_seq();
    c.in_flight = static_cast<uint32_t>(slot.consumer->in_flight());
    c.waiting = static_cast<uint32_t>(slot.consumer->waiting());
    c.attached = slot.push || !slot.pulls.empty();
    v.consumers.push_back(std::move(c));
  }
  return v;
}

absl::StatusOr<StreamView> StreamManager::Add(const StreamSettings& settings) {
  if (absl::Status s = ValidateStreamSettings(settings); !s.ok()) {
    return Invalid(s.message());
  }
  if (Stream* s = Find(settings.name)) {
    const std::vector<std::string> differences =
        SettingsDifferences(s->settings, settings);
    if (differences.empty()) return ViewOf(*s);
    // What to do depends on where it was defined: a configured stream
    // cannot be deleted through the protocol (Delete refuses it).
    return Invalid(absl::StrCat(
        "stream \"", settings.name,
        "\" exists with other settings: ", absl::StrJoin(differences, ", "),
        s->from_config ? "; it is defined in siftd's config ([[streams]]): "
                         "change it there"
                       : absl::StrCat("; delete it first (sift stream rm ",
                                      settings.name, ")")));
  }
  // A topic is stored in one stream: subjects may not overlap.
  for (const auto& other : streams_) {
    std::string overlap = Overlap(settings, other->settings);
    if (!overlap.empty()) {
      return Invalid(absl::StrCat("stream \"", settings.name, "\": subject ",
                                  overlap, " (a topic is stored in one "
                                  "stream only)"));
    }
  }
  if (absl::Status s = OpenStream(settings, false, true); !s.ok()) {
    return protocol::WireError(wire::INTERNAL, s.message());
  }
  return ViewOf(*streams_.back());
}

absl::Status StreamManager::Delete(const std::string& name) {
  auto it = std::find_if(streams_.begin(), streams_.end(),
                         [&](const auto& s) { return s->settings.name == name; });
  if (it == streams_.end()) {
    return NoStream(name);
  }
  if ((*it)->from_config) {
    return Invalid(absl::StrCat("stream \"", name,
                                "\" is defined in siftd's config file: remove "
                                "it there"));
  }
  Stream* s = it->get();
  std::vector<uint64_t> doomed;
  for (const auto& [id, slot] : slots_) {
    if (slot->stream != s) continue;
    doomed.push_back(id);
    // Its subscription and its waiting FETCHes are told they ended.
    if (slot->push) {
      StreamAnswer notice{
          slot->client, 0,
          Unknown(absl::StrCat("stream \"", name,
                               "\" was deleted: subscription ", slot->sid,
                               " ended"))};
      notice.ended_sid = slot->sid;
      notices_.push_back(std::move(notice));
    }
    for (const Pull& p : slot->pulls) {
      notices_.push_back(StreamAnswer{
          p.client, p.request_id,
          Unknown(absl::StrCat("stream \"", name, "\" was deleted"))});
    }
  }
  work_left_ = true;
  for (uint64_t id : doomed) DestroySlot(id);
  s->log->Close().IgnoreError();
  s->store.reset();
  s->held.reset();
  // Renamed first (atomic), so a crash mid-delete leaves no half stream.
  const std::string gone = absl::StrCat(s->dir, ".deleted");
  std::error_code ec;
  std::filesystem::remove_all(gone, ec);
  if (rename(s->dir.c_str(), gone.c_str()) == 0) {
    // Gone for good once answered, power loss included.
    SyncDir(absl::StrCat(data_dir_, "/streams")).IgnoreError();
    std::filesystem::remove_all(gone, ec);
  }
  streams_.erase(it);
  StreamsChanged();
  return absl::OkStatus();
}

absl::Status StreamManager::DeleteConsumer(const std::string& stream,
                                           const std::string& consumer) {
  Stream* s = Find(stream);
  if (s == nullptr) {
    return NoStream(stream);
  }
  auto it = s->durable.find(consumer);
  if (it == s->durable.end()) {
    return Unknown(absl::StrCat("stream ", Quoted(stream),
                                " has no consumer ", Quoted(consumer)));
  }
  DestroySlot(it->second);
  return absl::OkStatus();
}

absl::StatusOr<StreamView> StreamManager::Info(const std::string& name) const {
  Stream* s = Find(name);
  if (s == nullptr) {
    return NoStream(name);
  }
  return ViewOf(*s);
}

std::vector<StreamView> StreamManager::List() const {
  std::vector<StreamView> out;
  for (const auto& s : streams_) out.push_back(ViewOf(*s));
  return out;
}

// ---- Consumers

absl::StatusOr<uint64_t> StreamManager::StartFloor(const Stream& s,
                                                   const StartSpec& spec) {
  const uint64_t first = s.log->FirstSeq();
  switch (spec.policy) {
    case DeliverPolicy::kNew:
      return s.log->LastSeq();
    case DeliverPolicy::kAll:
      return first - 1;
    case DeliverPolicy::kFromSeq:
      if (spec.start_seq == 0) {
        return BadRequest("DELIVER_FROM_SEQ needs start_seq >= 1");
      }
      return std::max(spec.start_seq, first) - 1;
    case DeliverPolicy::kFromTime: {
      absl::StatusOr<uint64_t> seq = s.log->SeekTime(spec.start_time_ms);
      if (!seq.ok()) return protocol::WireError(wire::INTERNAL,
                                                seq.status().message());
      return *seq - 1;
    }
  }
  return BadRequest("unknown deliver policy");
}

absl::Status StreamManager::CheckPattern(const Stream& s,
                                         const std::string& pattern) const {
  if (pattern.empty()) return absl::OkStatus();
  for (const std::string& subject : s.settings.subjects) {
    if (topic::PatternsOverlap(pattern, subject)) return absl::OkStatus();
  }
  return BadRequest(absl::StrCat("pattern \"", pattern,
                                 "\" matches no subject of stream \"",
                                 s.settings.name, "\""));
}

absl::StatusOr<StreamManager::Slot*> StreamManager::SlotFor(
    Stream* s, const StartSpec& spec, const ConsumerOptions& options,
    bool temporary) {
  if (!spec.consumer.empty()) {
    if (!ValidConsumerName(spec.consumer)) {
      return BadRequest(
          absl::StrCat("consumer name ", Quoted(spec.consumer),
                       " must be 1 to 64 letters, digits, '_' or '-'"));
    }
    auto it = s->durable.find(spec.consumer);
    if (it != s->durable.end()) {
      Slot* slot = slots_.at(it->second).get();
      slot->consumer->options() = options;
      return slot;
    }
  }
  absl::StatusOr<uint64_t> floor = StartFloor(*s, spec);
  if (!floor.ok()) return floor.status();
  auto slot = std::make_unique<Slot>();
  slot->id = next_slot_++;
  slot->stream = s;
  slot->temporary = temporary && spec.consumer.empty();
  slot->consumer = std::make_unique<Consumer>(
      spec.consumer, *floor, std::vector<uint64_t>{});
  slot->consumer->options() = options;
  Slot* raw = slot.get();
  if (!spec.consumer.empty()) {
    s->durable[spec.consumer] = raw->id;
    s->store->Put(spec.consumer, raw->consumer->State());
  }
  slots_[raw->id] = std::move(slot);
  return raw;
}

void StreamManager::DestroySlot(uint64_t id) {
  auto it = slots_.find(id);
  if (it == slots_.end()) return;
  Slot& slot = *it->second;
  if (slot.push) push_.erase({slot.client, slot.sid});
  if (slot.consumer->durable()) {
    slot.stream->durable.erase(slot.consumer->name());
    if (slot.stream->store) slot.stream->store->Remove(slot.consumer->name());
  }
  for (auto i = ids_.begin(); i != ids_.end();) {
    if (i->second.first == id) {
      ids_.erase(i++);
    } else {
      ++i;
    }
  }
  slots_.erase(it);
}

absl::Status StreamManager::Subscribe(uint32_t client, uint64_t sid,
                                      const StartSpec& start,
                                      const ConsumerOptions& options,
                                      int64_t now) {
  Stream* s = Find(start.stream);
  if (s == nullptr) {
    return NoStream(start.stream);
  }
  if (push_.count({client, sid}) > 0) {
    return protocol::WireError(wire::DUPLICATE_SID,
                               absl::StrCat("sid ", sid, " is in use"));
  }
  if (absl::Status st = CheckPattern(*s, options.pattern); !st.ok()) {
    return st;
  }
  if (!start.consumer.empty()) {
    auto it = s->durable.find(start.consumer);
    if (it != s->durable.end()) {
      const Slot& slot = *slots_.at(it->second);
      if (slot.push || !slot.pulls.empty()) {
        return BadRequest(absl::StrCat(
            "consumer \"", start.consumer, "\" of stream \"", start.stream,
            "\" is in use by another subscription or FETCH"));
      }
    }
  }
  absl::StatusOr<Slot*> slot = SlotFor(s, start, options, false);
  if (!slot.ok()) return slot.status();
  (*slot)->push = true;
  (*slot)->client = client;
  (*slot)->sid = sid;
  push_[{client, sid}] = (*slot)->id;
  work_left_ = true;  // the next Process pumps it
  (void)now;
  return absl::OkStatus();
}

bool StreamManager::Unsubscribe(uint32_t client, uint64_t sid, int64_t now) {
  auto it = push_.find({client, sid});
  if (it == push_.end()) return false;
  Slot& slot = *slots_.at(it->second);
  push_.erase(it);
  slot.push = false;
  if (!slot.consumer->durable()) {
    DestroySlot(slot.id);
    return true;
  }
  std::vector<uint64_t> ids;
  slot.consumer->Release(client, now, &ids);
  for (uint64_t id : ids) ids_.erase(id);
  return true;
}

void StreamManager::RemoveClient(uint32_t client, int64_t now) {
  // Answers still owed to this session go with it: its handle is given to
  // the next client, which would take them for answers to its own request
  // ids (a trial saw a confirm answered with another session's stream_seq).
  ack_answers_.erase(
      std::remove_if(ack_answers_.begin(), ack_answers_.end(),
                     [&](const AckAnswer& a) { return a.client == client; }),
      ack_answers_.end());
  notices_.erase(
      std::remove_if(notices_.begin(), notices_.end(),
                     [&](const StreamAnswer& a) { return a.client == client; }),
      notices_.end());
  for (auto& stream : streams_) {
    auto& confirms = stream->confirms;
    confirms.erase(std::remove_if(confirms.begin(), confirms.end(),
                                  [&](const Stream::Confirm& c) {
                                    return c.client == client;
                                  }),
                   confirms.end());
  }
  std::vector<uint64_t> doomed;
  for (auto& [id, slot] : slots_) {
    if (slot->push && slot->client == client) {
      push_.erase({client, slot->sid});
      slot->push = false;
      if (!slot->consumer->durable()) {
        doomed.push_back(id);
        continue;
      }
    }
    slot->pulls.erase(
        std::remove_if(slot->pulls.begin(), slot->pulls.end(),
                       [&](const Pull& p) { return p.client == client; }),
        slot->pulls.end());
    if (slot->temporary && slot->pulls.empty()) {
      doomed.push_back(id);
      continue;
    }
    std::vector<uint64_t> ids;
    slot->consumer->Release(client, now, &ids);
    for (uint64_t i : ids) ids_.erase(i);
    if (!ids.empty()) work_left_ = true;
  }
  for (uint64_t id : doomed) DestroySlot(id);
}

absl::Status StreamManager::Fetch(uint32_t client, uint64_t request_id,
                                  uint64_t sid, const StartSpec& start,
                                  const ConsumerOptions& options,
                                  uint32_t batch, uint32_t max_wait_ms,
                                  int64_t now) {
  if (request_id == 0) return BadRequest("FETCH needs a request_id");
  if (sid == 0) return BadRequest("FETCH needs a non-zero sid");
  if (batch == 0 || batch > 10000) {
    return BadRequest(absl::StrCat("FETCH batch must be 1 to 10000 (got ",
                                   batch, ")"));
  }
  if (max_wait_ms > 3600000) {
    return BadRequest("FETCH max_wait_ms must be at most 3600000 (1 hour)");
  }
  if (options.explicit_ack && start.consumer.empty()) {
    return BadRequest(
        "FETCH with explicit acks needs a named consumer (its position and "
        "in-flight records live in it)");
  }
  Stream* s = Find(start.stream);
  if (s == nullptr) {
    return NoStream(start.stream, "FETCH reads streams only");
  }
  if (!start.consumer.empty()) {
    auto it = s->durable.find(start.consumer);
    if (it != s->durable.end() && slots_.at(it->second)->push) {
      return BadRequest(absl::StrCat("consumer \"", start.consumer,
                                     "\" is consumed by a subscription"));
    }
  }
  if (absl::Status st = CheckPattern(*s, options.pattern); !st.ok()) {
    return st;
  }
  absl::StatusOr<Slot*> slot = SlotFor(s, start, options, true);
  if (!slot.ok()) return slot.status();
  (*slot)->pulls.push_back(
      Pull{client, request_id, sid, batch, 0, now + max_wait_ms});
  work_left_ = true;
  return absl::OkStatus();
}

StreamManager::Found StreamManager::FindDelivery(uint64_t id) {
  auto it = ids_.find(id);
  if (it == ids_.end()) return {nullptr, 0};
  auto slot = slots_.find(it->second.first);
  if (slot == slots_.end()) return {nullptr, 0};
  return {slot->second.get(), it->second.second};
}

absl::Status StreamManager::Ack(uint32_t client, uint64_t id, int64_t now) {
  Found f = FindDelivery(id);
  if (f.slot == nullptr) return absl::NotFoundError("not in flight");
  absl::Status s = f.slot->consumer->Ack(f.seq, id, client);
  if (s.ok()) {
    ++counters_.acks;
    ids_.erase(id);
    work_left_ = true;  // room for the next record
  }
  (void)now;
  return s;
}

absl::Status StreamManager::Nack(uint32_t client, uint64_t id,
                                 std::optional<uint32_t> delay_ms,
                                 int64_t now) {
  Found f = FindDelivery(id);
  if (f.slot == nullptr) return absl::NotFoundError("not in flight");
  absl::Status s =
      f.slot->consumer->Nack(f.seq, id, client, delay_ms, now, random_.Next());
  if (s.ok()) {
    ++counters_.nacks;
    ids_.erase(id);
    work_left_ = true;
  }
  return s;
}

absl::Status StreamManager::Progress(uint32_t client, uint64_t id,
                                     int64_t now) {
  Found f = FindDelivery(id);
  if (f.slot == nullptr) return absl::NotFoundError("not in flight");
  absl::Status s = f.slot->consumer->Progress(f.seq, id, client, now);
  if (s.ok()) ++counters_.progress;
  return s;
}

void StreamManager::AnswerAckWhenSaved(uint32_t client, uint64_t request_id) {
  AckAnswer a{client, request_id, {}};
  SaveDirty(&a.tickets);
  ack_answers_.push_back(std::move(a));
}

void StreamManager::SaveDirty(
    std::vector<std::pair<std::string, uint64_t>>* tickets) {
  for (auto& [id, slot] : slots_) {
    Consumer& c = *slot->consumer;
    if (!c.TakeDirty() || !c.durable() || slot->stream->store == nullptr) {
      continue;
    }
    const uint64_t ticket = slot->stream->store->Put(c.name(), c.State());
    if (tickets != nullptr) {
      tickets->emplace_back(slot->stream->settings.name, ticket);
    }
  }
}

size_t StreamManager::consumers_with_acks() const {
  size_t n = 0;
  for (const auto& [id, slot] : slots_) {
    if (slot->consumer->options().explicit_ack &&
        (slot->push || !slot->pulls.empty())) {
      ++n;
    }
  }
  return n;
}

size_t StreamManager::in_flight() const {
  size_t n = 0;
  for (const auto& [id, slot] : slots_) n += slot->consumer->in_flight();
  return n;
}

// ---- The loop

void StreamManager::PollFds(std::vector<pollfd>* fds) const {
  for (const auto& s : streams_) {
    fds->push_back({s->log->notify_fd(), POLLIN, 0});
    if (s->store) fds->push_back({s->store->notify_fd(), POLLIN, 0});
    if (s->held) fds->push_back({s->held->notify_fd(), POLLIN, 0});
  }
}

void StreamManager::DeadLetterRecord(Slot& slot,
                                     const store::StreamRecord& record,
                                     std::vector<delivery::DeadLetter>* dead) {
  Consumer& c = *slot.consumer;
  dead->push_back(delivery::DeadLetter{
      record.message, slot.push ? slot.client : 0, slot.push ? slot.sid : 0,
      std::string(c.FailureAt(record.seq)), c.NextAttempt(record.seq) - 1,
      slot.stream->settings.name, record.seq});
  ++counters_.dead_letters;
  c.GiveUp(record.seq);
}

void StreamManager::DeadLetterExhausted(
    Slot& slot, int64_t now, std::vector<delivery::DeadLetter>* dead) {
  Consumer& c = *slot.consumer;
  std::vector<store::StreamRecord> records;
  size_t budget = kPumpBudget;
  for (uint64_t seq : c.DueRedeliveries(now, SIZE_MAX)) {
    if (budget == 0) break;
    if (!c.ExhaustedAt(seq)) continue;
    --budget;
    records.clear();
    if (!slot.stream->log->Read(seq, 1, kReadBytes, &records).ok() ||
        records.empty() || records[0].seq != seq) {
      c.GiveUp(seq);  // gone (retention)
      continue;
    }
    DeadLetterRecord(slot, records[0], dead);
  }
}

bool StreamManager::Pump(Slot& slot, int64_t now,
                         const std::function<bool(uint32_t)>& has_room,
                         std::vector<StreamSend>* sends,
                         std::vector<delivery::DeadLetter>* dead) {
  Consumer& c = *slot.consumer;
  store::StreamLog& log = *slot.stream->log;
  slot.client_full = false;
  c.Forget(log.FirstSeq());
  const uint64_t limit = log.DurableSeq();
  size_t budget = kPumpBudget;
  std::vector<store::StreamRecord> records;
  auto send = [&](const store::StreamRecord& r, uint32_t client, uint64_t sid,
                  Pull* pull) {
    const uint32_t attempt = c.NextAttempt(r.seq);
    uint64_t id = 0;
    if (c.options().explicit_ack) {
      id = next_id_++;
      ids_[id] = {slot.id, r.seq};
    }
    c.Sent(r.seq, id, client, now);
    ++counters_.delivered;
    if (attempt > 1) ++counters_.redeliveries;
    sends->push_back(StreamSend{client, sid, id,
                                c.options().explicit_ack ? attempt : 0, r.seq,
                                r.unix_ms, r.message});
    if (pull != nullptr) {
      --pull->remaining;
      ++pull->delivered;
    }
    --budget;
  };
  // Who takes the next record: the subscription, or the oldest FETCH that
  // wants more.
  auto ready = [&](uint32_t* client, uint64_t* sid, Pull** pull) {
    if (slot.push) {
      *client = slot.client;
      *sid = slot.sid;
      *pull = nullptr;
    } else {
      if (slot.pulls.empty() || slot.pulls.front().remaining == 0) {
        return false;
      }
      *client = slot.pulls.front().client;
      *sid = slot.pulls.front().sid;
      *pull = &slot.pulls.front();
    }
    return c.has_room() && has_room(*client) && budget > 0;
  };
  uint32_t client = 0;
  uint64_t sid = 0;
  Pull* pull = nullptr;
  // Redeliveries first, oldest first.
  if (c.waiting() > 0) {
    for (uint64_t seq : c.DueRedeliveries(now, budget)) {
      const bool exhausted = c.ExhaustedAt(seq);
      // What cannot go out now waits; Process dead-letters those behind it
      // that max_deliver ended (DeadLetterExhausted).
      if (!exhausted && !ready(&client, &sid, &pull)) break;
      records.clear();
      if (!log.Read(seq, 1, kReadBytes, &records).ok() || records.empty() ||
          records[0].seq != seq) {
        c.GiveUp(seq);  // gone (retention)
        continue;
      }
      if (exhausted) {
        DeadLetterRecord(slot, records[0], dead);
        continue;
      }
      const std::string& filter = c.options().pattern;
      if (!filter.empty() &&
          !topic::PatternMatches(filter, records[0].message->topic())) {
        // The consumer's pattern changed since it was delivered: skipped,
        // and so acknowledged, as a new record on that topic would be.
        c.GiveUp(seq);
        continue;
      }
      send(records[0], client, sid, pull);
    }
  }
  // New records, from the read-ahead first.
  const std::string& pattern = c.options().pattern;
  std::deque<store::StreamRecord>& ahead = slot.ahead;
  while (c.next_seq() <= limit && ready(&client, &sid, &pull)) {
    while (!ahead.empty() && ahead.front().seq < c.next_seq()) {
      ahead.pop_front();
    }
    if (ahead.empty() || ahead.front().seq != c.next_seq()) {
      ahead.clear();
      records.clear();
      const size_t want =
          std::min<uint64_t>(kReadBatch, limit - c.next_seq() + 1);
      absl::Status read = log.Read(c.next_seq(), want, kReadBytes, &records);
      if (!read.ok() || records.empty()) {
        // Not readable yet (or a read error, logged): look again soon
        // rather than wait for news that may not come.
        if (!read.ok() && !slot.read_error_logged) {
          slot.read_error_logged = true;
          log_(true, "stream read failed: consumer waits",
               {{"stream", slot.stream->settings.name},
                {"seq", absl::StrCat(c.next_seq())},
                {"error", std::string(read.message())}});
        }
        retry_at_ = std::min(retry_at_, now + kFullClientRetryMs);
        break;
      }
      for (store::StreamRecord& r : records) ahead.push_back(std::move(r));
    }
    while (!ahead.empty() && c.next_seq() <= limit &&
           ready(&client, &sid, &pull)) {
      const store::StreamRecord& r = ahead.front();
      if (r.seq > limit) break;
      if (r.seq < c.next_seq()) {
        ahead.pop_front();
        continue;
      }
      if (r.seq > c.next_seq()) break;  // a gap: read again
      if (!pattern.empty() &&
          !topic::PatternMatches(pattern, r.message->topic())) {
        c.Skip(r.seq);
      } else {
        send(r, client, sid, pull);
      }
      ahead.pop_front();
    }
  }
  if (budget == 0) {
    work_left_ = true;
    return true;
  }
  // Stopped because the client's queue is full, with records at hand: look
  // again soon (nothing else would wake this consumer).
  if ((c.next_seq() <= limit || c.waiting() > 0) && c.has_room() &&
      (slot.push || (!slot.pulls.empty() && slot.pulls.front().remaining > 0)) &&
      !has_room(slot.push ? slot.client : slot.pulls.front().client)) {
    slot.client_full = true;
    retry_at_ = std::min(retry_at_, now + kFullClientRetryMs);
  }
  return false;
}

void StreamManager::Process(int64_t now,
                            const std::function<bool(uint32_t)>& has_room,
                            std::vector<StreamSend>* sends,
                            std::vector<StreamAnswer>* answers,
                            std::vector<delivery::DeadLetter>* dead) {
  work_left_ = false;
  retry_at_ = INT64_MAX;
  for (StreamAnswer& n : notices_) answers->push_back(std::move(n));
  notices_.clear();
  std::vector<uint64_t> expired;
  for (const auto& s : streams_) {
    const uint64_t durable = s->log->TakeDurable();
    if (s->store) s->store->TakeDurable();
    const uint64_t held_durable = s->held ? s->held->TakeDurable() : 0;
    absl::Status failed = s->log->writer_status();
    while (!s->confirms.empty() &&
           ((s->confirms.front().seq <= durable &&
             s->confirms.front().held_ticket <= held_durable) ||
            !failed.ok())) {
      const Stream::Confirm& c = s->confirms.front();
      StreamAnswer a{c.client, c.request_id, absl::OkStatus(), c.seq,
                     c.duplicate, 0};
      if (c.seq > durable) {
        a.status = protocol::WireError(
            wire::STORE_FULL,
            absl::StrCat("stream \"", s->settings.name,
                         "\" could not make it durable: ",
                         failed.message()));
      }
      answers->push_back(std::move(a));
      s->confirms.pop_front();
    }
    for (ConsumerStore* store : {s->store.get(), s->held.get()}) {
      if (store == nullptr || s->store_failed_logged) continue;
      absl::Status bad = store->writer_status();
      if (!bad.ok()) {
        s->store_failed_logged = true;
        log_(true, "stream's consumer positions or kept messages can no longer be "
             "saved: they are lost at the next restart",
             {{"stream", s->settings.name}, {"error", std::string(bad.message())}});
      }
    }
    if (!failed.ok() && !s->failed_logged) {
      s->failed_logged = true;
      log_(true, "stream writer failed: nothing more is stored until siftd "
           "restarts",
           {{"stream", s->settings.name},
            {"error", std::string(failed.message())}});
    }
    s->durable_seen = durable;
    WarnForgottenIds(*s, now);
  }
  std::vector<uint64_t> doomed;
  for (auto& [id, slot] : slots_) {
    Consumer& c = *slot->consumer;
    if (c.options().explicit_ack && c.in_flight() > 0) {
      expired.clear();
      counters_.expired += c.Expire(now, random_.Next(), &expired);
      for (uint64_t e : expired) ids_.erase(e);
    }
    bool more = false;  // stopped by its budget, not for want of records
    if (slot->push || !slot->pulls.empty()) {
      more = Pump(*slot, now, has_room, sends, dead);
    }
    if (c.waiting() > 0 && !slot->CanDeliver()) {
      DeadLetterExhausted(*slot, now, dead);
    }
    // FETCHes end when served, or when due with nothing more at hand.
    while (!slot->pulls.empty() &&
           (slot->pulls.front().remaining == 0 ||
            (slot->pulls.front().deadline <= now && !more))) {
      const Pull& p = slot->pulls.front();
      StreamAnswer a{p.client, p.request_id, absl::OkStatus(), 0, false,
                     p.delivered};
      answers->push_back(std::move(a));
      slot->pulls.pop_front();
      if (!slot->pulls.empty()) more = Pump(*slot, now, has_room, sends, dead);
    }
    if (slot->temporary && slot->pulls.empty()) doomed.push_back(id);
  }
  for (uint64_t id : doomed) DestroySlot(id);
  SaveDirty(nullptr);
  // ACK answers wait for the positions they changed to be on disk.
  while (!ack_answers_.empty()) {
    AckAnswer& a = ack_answers_.front();
    bool done = true;
    for (const auto& [name, ticket] : a.tickets) {
      Stream* s = Find(name);
      ConsumerStore* store =
          s == nullptr ? nullptr : (a.held ? s->held.get() : s->store.get());
      if (store != nullptr && store->DurableTicket() < ticket) {
        done = store->writer_status().ok() ? false : true;
      }
    }
    if (!done) break;
    answers->push_back(StreamAnswer{a.client, a.request_id, absl::OkStatus()});
    ack_answers_.pop_front();
  }
}

void StreamManager::WarnForgottenIds(Stream& s, int64_t now) {
  const uint64_t forgotten =
      s.log->stats().dedup_ids_forgotten_early.load(std::memory_order_relaxed);
  if (forgotten <= s.forgotten_warned || now < s.forgotten_warn_at) return;
  log_(true,
       "stream dedup forgot message ids inside the dedup window "
       "(dedup_max_ids newer ids came first): a republish of them is stored "
       "again; raise the stream's dedup_max_ids",
       {{"stream", s.settings.name},
        {"ids_forgotten_early", absl::StrCat(forgotten)},
        {"since_last_warning", absl::StrCat(forgotten - s.forgotten_warned)},
        {"dedup_max_ids", absl::StrCat(s.settings.dedup_max_ids)},
        {"dedup_window_ms", absl::StrCat(s.settings.dedup_window_ms)}});
  s.forgotten_warned = forgotten;
  s.forgotten_warn_at = now + kForgottenWarnEveryMs;
}

int64_t StreamManager::NextDeadline(int64_t now) const {
  if (work_left_) return now;
  int64_t next = retry_at_;
  // Ids forgotten since the last warning: warned of when the minute is up.
  for (const auto& s : streams_) {
    if (s->log->stats().dedup_ids_forgotten_early.load(
            std::memory_order_relaxed) > s->forgotten_warned) {
      next = std::min(next, std::max(now, s->forgotten_warn_at));
    }
  }
  for (const auto& [id, slot] : slots_) {
    if (!slot->pulls.empty()) next = std::min(next, slot->pulls.front().deadline);
    if (slot->consumer->options().explicit_ack || slot->consumer->waiting()) {
      // Redeliveries nobody can take now wait (CanDeliver): not a deadline.
      next = std::min(next, slot->consumer->NextDeadline(slot->CanDeliver()));
    }
  }
  return next;
}

}  // namespace sift::streams
