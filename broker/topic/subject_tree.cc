// Run //bench:subject_tree_bench before changing this file: Match is on the
// path of every publish, and the node layout decides the memory footprint of
// every subscription.
//
// Layout. A node is one token of some pattern's path. It holds the
// subscriptions whose pattern ends at it and a tagged `children` word. Most
// nodes are leaves holding one subscription, or links in a chain with a single
// child (the "<id>" in "user.<id>.inbox", or the "*" in "user.*"), so those two
// shapes are kept small and allocate nothing besides the node itself:
//   - the token is stored inline after the 32-byte node header (one malloc
//     chunk of 48 bytes for tokens up to 8 bytes, 64 up to 24);
//   - up to two handles live inside the node (HandleSet);
//   - a single child, literal or wildcard, is a direct pointer in `children`.
// Everything else (several children, queue groups) lives in an `Extra`
// allocated on demand and folded back to the single-child form when it can.
// 1M distinct three-token subscriptions take about 57 bytes each, or 115 when
// each adds two levels of its own with a 17-byte token (heap in use, measured
// by BM_MemoryPerSubscription in //bench:subject_tree_bench).
//
// Matching walks the topic's tokens from the root. At each node it collects
// the ">" child (matches the rest of the topic), recurses into the "*" child
// with the next token, and follows the literal child for this token, so the
// work is bounded by the topic depth times the wildcard branching, never by the
// number of subscriptions.
//
// Queue groups. A match lists each matching group once, with its eligible
// members, and points it at the round-robin counter of that (group, member
// list), found or made here, on the slow path (see ListKey). A cached result
// keeps the pointer, so a publish served from the cache picks a member with
// one increment and one modulo: no hashing, no allocation.

#include "broker/topic/subject_tree.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/types/span.h"
#include "broker/topic/topic.h"

namespace sift::topic {
namespace {

using TokenArray = std::array<std::string_view, kHardMaxTokens>;

[[noreturn]] ABSL_ATTRIBUTE_NOINLINE void Die(const char* what,
                                              std::string_view name) {
  std::fprintf(stderr, "SubjectTree: %s: \"%.*s\"\n", what,
               static_cast<int>(std::min<size_t>(name.size(), 200)),
               name.data());
  std::abort();
}

// Splits a validated name into tokens on the stack (like sublist.go's
// `tokens [32]string` array): no heap allocation per publish. Returns the
// token count.
size_t Tokenize(std::string_view s, TokenArray& out) {
  size_t n = 0;
  size_t start = 0;
  for (;;) {
    const void* dot = std::memchr(s.data() + start, '.', s.size() - start);
    const size_t end =
        dot == nullptr ? s.size() : static_cast<const char*>(dot) - s.data();
    if (ABSL_PREDICT_FALSE(n == kHardMaxTokens)) {
      Die("name has more than kHardMaxTokens tokens (not validated?)", s);
    }
    out[n++] = s.substr(start, end - start);
    if (dot == nullptr) return n;
    start = end + 1;
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// HandleSet: the handles subscribed at one node (or one queue group of it).
//
// An unordered array, sized for the common case: most nodes hold one or two
// subscriptions, so up to kInline handles live inside the 16-byte object and
// need no allocation. Larger sets use a heap array with linear search (a scan
// of up to kIndexAt uint32s is cheaper than hashing). Past kIndexAt handles, a
// position index keeps Insert/Erase O(1), because a fan-out topic may have
// 100k subscribers and linear duplicate checks would make subscribing them
// quadratic. Matching always iterates one contiguous array.
class SubjectTree::HandleSet {
 public:
  HandleSet() { u_.in_place[0] = u_.in_place[1] = 0; }
  ~HandleSet() { Release(); }
  HandleSet(HandleSet&& o) noexcept : size_(o.size_), cap_(o.cap_), u_(o.u_) {
    o.size_ = 0;
    o.cap_ = kInline;
  }
  HandleSet& operator=(HandleSet&& o) noexcept {
    if (this != &o) {
      Release();
      size_ = o.size_;
      cap_ = o.cap_;
      u_ = o.u_;
      o.size_ = 0;
      o.cap_ = kInline;
    }
    return *this;
  }

  bool empty() const { return size_ == 0; }
  uint32_t size() const { return size_; }
  const Handle* begin() const { return data(); }
  const Handle* end() const { return data() + size_; }

  // Returns false if `h` is already present.
  bool Insert(Handle h) {
    if (Find(h) >= 0) return false;
    if (size_ == cap_) Grow();  // may switch to indexed
    if (cap_ == kIndexed) {
      u_.indexed->position.emplace(h, size_);
      u_.indexed->handles.push_back(h);
    } else {
      mutable_data()[size_] = h;
    }
    ++size_;
    return true;
  }

  // Returns false if `h` is not present. Moves the last handle into the gap.
  bool Erase(Handle h) {
    const int64_t i = Find(h);
    if (i < 0) return false;
    Handle* d = mutable_data();
    const Handle last = d[size_ - 1];
    d[i] = last;
    if (cap_ == kIndexed) {
      u_.indexed->handles.pop_back();
      u_.indexed->position.erase(h);
      if (last != h) u_.indexed->position[last] = static_cast<uint32_t>(i);
    }
    --size_;
    MaybeShrink();
    return true;
  }

 private:
  static constexpr uint32_t kInline = 2;
  static constexpr uint32_t kIndexAt = 32;          // largest unindexed array
  static constexpr uint32_t kIndexed = UINT32_MAX;  // cap_ when indexed

  struct Indexed {
    std::vector<Handle> handles;
    absl::flat_hash_map<Handle, uint32_t> position;  // handle -> index
  };
  union Storage {
    Handle in_place[kInline];  // cap_ == kInline
    Handle* array;             // kInline < cap_ <= kIndexAt
    Indexed* indexed;          // cap_ == kIndexed
  };

  const Handle* data() const {
    if (cap_ == kInline) return u_.in_place;
    if (cap_ == kIndexed) return u_.indexed->handles.data();
    return u_.array;
  }
  Handle* mutable_data() { return const_cast<Handle*>(data()); }

  int64_t Find(Handle h) const {
    if (cap_ == kIndexed) {
      auto it = u_.indexed->position.find(h);
      if (it == u_.indexed->position.end()) return -1;
      return it->second;
    }
    const Handle* d = data();
    for (uint32_t i = 0; i < size_; ++i) {
      if (d[i] == h) return i;
    }
    return -1;
  }

  void Grow() {
    const uint32_t new_cap = cap_ * 2;
    if (new_cap <= kIndexAt) {
      MoveTo(new_cap);
      return;
    }
    auto* ix = new Indexed;
    ix->handles.assign(data(), data() + size_);
    ix->position.reserve(size_ + 1);
    for (uint32_t i = 0; i < size_; ++i) {
      ix->position.emplace(ix->handles[i], i);
    }
    Release();
    u_.indexed = ix;
    cap_ = kIndexed;
  }

  // Shrinks when a quarter full (a half-full indexed set becomes an array),
  // so alternating Insert/Erase at a boundary does not reallocate each time.
  void MaybeShrink() {
    if (cap_ == kIndexed) {
      if (size_ <= kIndexAt / 2) MoveTo(kIndexAt);
    } else if (cap_ > kInline && size_ <= cap_ / 4) {
      MoveTo(size_ <= kInline ? kInline : cap_ / 2);
    }
  }

  // Moves the handles into inline storage (new_cap == kInline) or a fresh
  // heap array of new_cap. REQUIRES: size_ <= new_cap <= kIndexAt.
  void MoveTo(uint32_t new_cap) {
    Storage next;
    Handle* dst =
        new_cap == kInline ? next.in_place : (next.array = new Handle[new_cap]);
    std::copy(data(), data() + size_, dst);
    Release();
    u_ = next;
    cap_ = new_cap;
  }

  void Release() {
    if (cap_ == kIndexed) {
      delete u_.indexed;
    } else if (cap_ != kInline) {
      delete[] u_.array;
    }
  }

  uint32_t size_ = 0;
  uint32_t cap_ = kInline;
  Storage u_;
};

// ---------------------------------------------------------------------------
// Nodes.

// A node is allocated as one block: this 32-byte header followed by the token's
// bytes (a variable-sized object, hence New/Delete instead of new/delete).
// Storing the token inline saves std::string's 32 bytes, and the separate
// allocation std::string would make for tokens over 15 bytes (UUIDs).
struct SubjectTree::Node {
  static Node* New(std::string_view token) {
    void* mem = ::operator new(sizeof(Node) + token.size());
    Node* n = new (mem) Node(static_cast<uint32_t>(token.size()));
    if (!token.empty()) {
      std::memcpy(reinterpret_cast<char*>(n + 1), token.data(), token.size());
    }
    return n;
  }
  static void Delete(Node* n) {
    if (n == nullptr) return;
    n->~Node();
    ::operator delete(n);
  }
  struct Deleter {
    void operator()(Node* n) const { Delete(n); }
  };

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // This node's token in its parent ("*" or ">" for wildcard children).
  std::string_view token() const {
    return {reinterpret_cast<const char*>(this + 1), token_size};
  }
  bool Empty() const { return plain.empty() && children == 0; }

  // The Extra, if `children` holds one; else null.
  Extra* extra() const {
    return (children & kExtraTag) != 0
               ? reinterpret_cast<Extra*>(children & ~kExtraTag)
               : nullptr;
  }
  // The only child, if `children` holds a plain node pointer; else null.
  Node* only_child() const {
    return (children & kExtraTag) == 0 ? reinterpret_cast<Node*>(children)
                                       : nullptr;
  }

  static constexpr uintptr_t kExtraTag = 1;  // Node and Extra are 8-aligned

  HandleSet plain;  // subscriptions without a queue group
  // 0: a leaf without queue groups. A Node*: exactly one child (literal or
  // wildcard) and no queue groups. An Extra* | kExtraTag: anything else.
  // Owning.
  uintptr_t children = 0;
  const uint32_t token_size;

 private:
  explicit Node(uint32_t size) : token_size(size) {}
  ~Node();
};

// Hash and equality over a node's token, transparent so that lookups take the
// topic's string_view tokens without building a std::string.
struct SubjectTree::TokenHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return StringViewHash{}(s); }
  size_t operator()(const Node* n) const {
    return StringViewHash{}(n->token());
  }
};
struct SubjectTree::TokenEq {
  using is_transparent = void;
  static std::string_view Key(std::string_view s) { return s; }
  static std::string_view Key(const Node* n) { return n->token(); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return Key(a) == Key(b);
  }
};

struct SubjectTree::QueueEntry {
  GroupMap::value_type* group;  // name and round-robin counters
  HandleSet members;
};

// Everything a leaf or a single-child link does not need.
struct SubjectTree::Extra {
  Extra() = default;
  Extra(const Extra&) = delete;
  Extra& operator=(const Extra&) = delete;
  ~Extra() {
    for (Node* n : literals) Node::Delete(n);
  }

  bool Empty() const {
    return literals.empty() && star == nullptr && gt == nullptr &&
           queues.empty();
  }
  // If a plain pointer to the one child can replace this Extra (no queues,
  // exactly one child of any kind), releases that child from the Extra's
  // ownership and returns it; else null.
  Node* ReleaseSoleChild() {
    if (!queues.empty()) return nullptr;
    const int kinds = static_cast<int>(literals.size()) + (star != nullptr) +
                      (gt != nullptr);
    if (kinds != 1) return nullptr;
    if (star != nullptr) return star.release();
    if (gt != nullptr) return gt.release();
    Node* child = *literals.begin();
    literals.clear();  // so that ~Extra does not delete it
    return child;
  }

  // Literal children, owned. A set of node pointers keyed by the node's own
  // token, not a map<std::string, Node*>: an 8-byte slot instead of 40, and
  // the lookup dereferences the node it is about to descend into anyway.
  absl::flat_hash_set<Node*, TokenHash, TokenEq> literals;
  std::unique_ptr<Node, Node::Deleter> star;  // "*": one token
  std::unique_ptr<Node, Node::Deleter> gt;    // ">": the rest; always a leaf
  // Queue groups subscribed at this node. A vector, not a map: a node rarely
  // has more than a few groups, and Match iterates all of them.
  std::vector<QueueEntry> queues;
};

SubjectTree::Node::~Node() {
  if (Extra* x = extra()) {
    delete x;
  } else {
    Delete(only_child());
  }
}

// ---------------------------------------------------------------------------

namespace {

// The result for topics nobody listens to, shared so that a miss on an
// uncached topic costs no allocation. Never destroyed.
const SubjectTree::MatchResult& EmptyResult() {
  static const auto* const kEmpty = new SubjectTree::MatchResult;
  return *kEmpty;
}

size_t HandleCount(const SubjectTree::MatchResult& r) {
  size_t n = r.plain.size();
  for (const auto& g : r.groups) n += g.members.size();
  return n;
}

bool IsEmpty(const SubjectTree::MatchResult& r) {
  return r.plain.empty() && r.groups.empty();
}

void SortUnique(std::vector<SubjectTree::Handle>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The key of a member list among its group's round-robin counters: a 64-bit
// digest of the handles in their order, and their count.
//
// In their order, because the counter indexes the list: topics share a
// counter only if they list the same members in the same order. A list comes
// either from one node's HandleSet, in an order fixed until the tree changes,
// or merged from several nodes and sorted; so one node, or one combination of
// nodes, always yields the same list. The same set listed in another order
// (from another node) gets a counter of its own, which is as fair. Sorting
// every list instead would cost a large group O(n log n) per match where
// hashing costs O(n).
uint64_t ListKey(const std::vector<SubjectTree::Handle>& members) {
  return absl::Hash<absl::Span<const SubjectTree::Handle>>{}(
      absl::MakeConstSpan(members));
}

// The start of the n-th counter a group makes: a scrambled counter (the
// SplitMix64 finalizer), so that the first pick on a new member list, which
// follows every membership change, lands on each member about equally often.
// Starting at 0 would always pick the first member; a plain counter (or the
// group's pick count) can line up with the list sizes and do the same. 32
// bits, so that the counter never wraps in practice.
uint64_t CursorSeed(uint64_t n) {
  uint64_t z = n + 0x9e3779b97f4a7c15u;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return (z ^ (z >> 31)) >> 32;
}

// Round-robin counters the tree keeps before it drops them all: this many,
// plus two per queued subscription. Lists whose members left linger until
// then; the lists live at any one time rarely outnumber the memberships that
// form them, so a tree without churn never reaches the bound.
constexpr size_t kMinCursors = 1024;

// Cached results may hold at most this many handles per unit of capacity in
// total (1M handles, 4 MB, at the default capacity), so that caching many
// topics of a large fan-out cannot use unbounded memory.
constexpr size_t kCachedHandlesPerEntry = 256;

}  // namespace

SubjectTree::SubjectTree(size_t cache_capacity)
    : cache_capacity_(cache_capacity),
      cache_max_handles_(cache_capacity * kCachedHandlesPerEntry),
      root_(Node::New("")) {
  // The memory per subscription depends on these (see the top of the file).
  static_assert(sizeof(HandleSet) == 16, "keep HandleSet compact");
  static_assert(sizeof(Node) == 32, "keep the node header at 32 bytes");
  static_assert(alignof(Extra) > Node::kExtraTag, "tag bit must be free");
  static_assert(alignof(Node) > Node::kExtraTag, "tag bit must be free");
}

SubjectTree::~SubjectTree() { Node::Delete(root_); }

// Returns the node's Extra, creating it (and moving a single child into it)
// if the node has none.
SubjectTree::Extra& SubjectTree::EnsureExtra(Node* node) {
  if (Extra* x = node->extra()) return *x;
  auto* x = new Extra;
  if (Node* only = node->only_child()) {
    // The single-child slot may hold a wildcard child too.
    if (only->token() == "*") {
      x->star.reset(only);
    } else if (only->token() == ">") {
      x->gt.reset(only);
    } else {
      x->literals.insert(only);
    }
  }
  node->children = reinterpret_cast<uintptr_t>(x) | Node::kExtraTag;
  return *x;
}

// Folds an Extra that is no longer needed back into the compact forms.
void SubjectTree::Compact(Node* node) {
  Extra* x = node->extra();
  if (x == nullptr) return;
  if (x->Empty()) {
    node->children = 0;
    delete x;
  } else if (Node* only = x->ReleaseSoleChild()) {
    node->children = reinterpret_cast<uintptr_t>(only);
    delete x;
  }
}

SubjectTree::Node* SubjectTree::GetOrAddChild(Node* node,
                                              std::string_view token) {
  if (node->children == 0) {  // first child, of any kind: link it directly
    Node* child = Node::New(token);
    node->children = reinterpret_cast<uintptr_t>(child);
    ++node_count_;
    return child;
  }
  if (Node* only = node->only_child();
      only != nullptr && only->token() == token) {
    return only;
  }
  if (token == "*" || token == ">") {
    Extra& x = EnsureExtra(node);
    auto& wildcard = token == "*" ? x.star : x.gt;
    if (wildcard == nullptr) {
      wildcard.reset(Node::New(token));
      ++node_count_;
    }
    return wildcard.get();
  }
  Extra& x = EnsureExtra(node);
  auto it = x.literals.find(token);
  if (it == x.literals.end()) {
    it = x.literals.insert(Node::New(token)).first;
    ++node_count_;
  }
  return *it;
}

SubjectTree::Node* SubjectTree::FindChild(const Node* node,
                                          std::string_view token) {
  if (Node* only = node->only_child()) {
    return only->token() == token ? only : nullptr;
  }
  const Extra* x = node->extra();
  if (x == nullptr) return nullptr;
  if (token == "*") return x->star.get();
  if (token == ">") return x->gt.get();
  auto it = x->literals.find(token);
  return it == x->literals.end() ? nullptr : *it;
}

// REQUIRES: `parent` has a child for `token`.
void SubjectTree::EraseChild(Node* parent, std::string_view token) {
  --node_count_;
  if (Node* only = parent->only_child()) {
    parent->children = 0;
    Node::Delete(only);
    return;
  }
  Extra& x = *parent->extra();
  if (token == "*") {
    x.star.reset();
  } else if (token == ">") {
    x.gt.reset();
  } else {
    auto it = x.literals.find(token);
    Node* child = *it;
    x.literals.erase(it);
    Node::Delete(child);
    // flat_hash_set never shrinks by itself; after a mass unsubscribe give
    // the memory back (rehash(0) shrinks to fit). Amortized O(1): the set
    // must lose 3/4 of its entries between shrinks.
    if (x.literals.capacity() > 64 &&
        x.literals.size() < x.literals.capacity() / 4) {
      x.literals.rehash(0);
    }
  }
  Compact(parent);
}

bool SubjectTree::InsertQueued(Node* node, std::string_view group, Handle h) {
  std::vector<QueueEntry>& queues = EnsureExtra(node).queues;
  for (QueueEntry& q : queues) {
    if (q.group->first == group) {
      if (!q.members.Insert(h)) return false;
      ++q.group->second.members;
      return true;
    }
  }
  auto it = groups_.find(group);
  if (it == groups_.end()) it = groups_.emplace(group, GroupState{}).first;
  ++it->second.members;
  queues.push_back(QueueEntry{&*it, HandleSet()});
  queues.back().members.Insert(h);
  return true;
}

bool SubjectTree::EraseQueued(Node* node, std::string_view group, Handle h) {
  Extra* x = node->extra();
  if (x == nullptr) return false;
  std::vector<QueueEntry>& queues = x->queues;
  for (size_t i = 0; i < queues.size(); ++i) {
    QueueEntry& q = queues[i];
    if (q.group->first != group) continue;
    if (!q.members.Erase(h)) return false;
    if (--q.group->second.members == 0) {
      // The group's counters go with it. Remove bumps generation_, so no
      // cached result still points at them.
      cursor_count_ -= q.group->second.cursors.size();
      groups_.erase(groups_.find(group));
    }
    if (q.members.empty()) {
      if (i + 1 != queues.size()) q = std::move(queues.back());
      queues.pop_back();
      if (queues.empty()) queues.shrink_to_fit();
    }
    Compact(node);
    return true;
  }
  return false;
}

bool SubjectTree::Insert(std::string_view pattern, std::string_view queue_group,
                         Handle h) {
  TokenArray tokens;
  const size_t n = Tokenize(pattern, tokens);
  Node* node = root_;
  for (size_t i = 0; i < n; ++i) node = GetOrAddChild(node, tokens[i]);
  // A duplicate finds every node already present, so nothing was created.
  const bool added = queue_group.empty() ? node->plain.Insert(h)
                                         : InsertQueued(node, queue_group, h);
  if (!added) return false;
  ++subscription_count_;
  if (!queue_group.empty()) ++queued_count_;
  // Invalidate the cache in O(1). Clearing it here instead would make a bulk
  // subscribe pay for the cache once per call; the lazy clear in Match runs
  // once per batch of changes.
  ++generation_;
  return true;
}

bool SubjectTree::Remove(std::string_view pattern, std::string_view queue_group,
                         Handle h) {
  TokenArray tokens;
  const size_t n = Tokenize(pattern, tokens);
  // path[i + 1] is the node for tokens[i].
  std::array<Node*, kHardMaxTokens + 1> path;
  path[0] = root_;
  for (size_t i = 0; i < n; ++i) {
    path[i + 1] = FindChild(path[i], tokens[i]);
    if (path[i + 1] == nullptr) return false;
  }
  Node* node = path[n];
  const bool removed = queue_group.empty() ? node->plain.Erase(h)
                                           : EraseQueued(node, queue_group, h);
  if (!removed) return false;
  --subscription_count_;
  if (!queue_group.empty()) --queued_count_;
  ++generation_;
  // Prune bottom-up: a node with no subscriptions and no children goes; each
  // deletion may leave its parent empty in turn. The root stays.
  for (size_t i = n; i > 0 && path[i]->Empty(); --i) {
    EraseChild(path[i - 1], tokens[i - 1]);
  }
  return true;
}

// ---------------------------------------------------------------------------
// Matching.

const SubjectTree::MatchResult& SubjectTree::Match(std::string_view topic) {
  const MatchResult* cached = FindCached(topic);
  return ABSL_PREDICT_TRUE(cached != nullptr) ? *cached : MatchUncached(topic);
}

const SubjectTree::MatchResult* SubjectTree::FindCached(
    std::string_view topic) {
  if (cache_capacity_ == 0) return nullptr;
  if (ABSL_PREDICT_FALSE(cache_generation_ != generation_)) ResetCache();
  // Heterogeneous lookup: the string_view is hashed as is, so a hit
  // allocates nothing.
  auto it = cache_.find(topic);
  if (ABSL_PREDICT_FALSE(it == cache_.end())) return nullptr;
  ++cache_hits_;
  return &it->second;
}

const SubjectTree::MatchResult& SubjectTree::MatchUncached(
    std::string_view topic) {
  ++cache_misses_;
  TokenArray tokens;
  const size_t n = Tokenize(topic, tokens);
  ResetScratch();
  Collect(root_, tokens.data(), n, 0);

  // A handle can reach the result twice only through two different nodes
  // (a HandleSet has no duplicates), so sort only when several nodes fed a
  // vector.
  if (plain_sources_ > 1) SortUnique(scratch_.plain);
  for (size_t g = 0; g < scratch_.groups.size(); ++g) {
    if (group_sources_[g] > 1) SortUnique(scratch_.groups[g].members);
  }
  if (!scratch_.groups.empty()) AssignCursors();

  const bool empty = IsEmpty(scratch_);
  if (cache_capacity_ == 0) return empty ? EmptyResult() : scratch_;
  const size_t cost = HandleCount(scratch_);
  // A result too large for the budget is not cached: recomputing it costs
  // about what copying it would, and delivering it costs far more.
  if (cost > cache_max_handles_) return scratch_;
  if (cache_generation_ != generation_) ResetCache();
  while (cache_.size() >= cache_capacity_ ||
         cached_handles_ + cost > cache_max_handles_) {
    EvictSome();
  }
  // Empty results are cached too: publishing to a topic nobody listens to is
  // common and should cost one lookup. Their copy allocates nothing.
  auto it = cache_.emplace(std::string(topic), empty ? MatchResult() : scratch_)
                .first;
  cached_handles_ += cost;
  return it->second;
}

void SubjectTree::ResetScratch() {
  for (Group& g : scratch_.groups) {
    g.members.clear();
    spare_members_.push_back(std::move(g.members));
  }
  scratch_.groups.clear();
  scratch_.plain.clear();
  group_sources_.clear();
  group_states_.clear();
  group_keys_.clear();
  plain_sources_ = 0;
}

// Collects the subscriptions under `node` that match tokens[i..n). Recursion
// happens only at "*" children, so its depth is at most the topic's depth.
void SubjectTree::Collect(const Node* node, const std::string_view* tokens,
                          size_t n, size_t i) {
  for (; i < n; ++i) {
    if (node->children == 0) return;
    if (const Node* only = node->only_child()) {
      // A sole child may be a wildcard. (Topics never hold "*" or ">"
      // tokens, so a literal comparison cannot mistake one for the other.)
      const std::string_view token = only->token();
      if (token == ">") {
        AddNode(*only);  // ">" takes tokens[i..n), n > i
        return;
      }
      if (token != "*" && token != tokens[i]) return;
      node = only;
      continue;
    }
    const Extra* x = node->extra();
    if (x->gt != nullptr) AddNode(*x->gt);  // ">" takes tokens[i..n), n > i
    if (x->star != nullptr) Collect(x->star.get(), tokens, n, i + 1);
    auto it = x->literals.find(tokens[i]);
    if (it == x->literals.end()) return;
    node = *it;
  }
  AddNode(*node);
}

void SubjectTree::AddNode(const Node& node) {
  if (!node.plain.empty()) {
    scratch_.plain.insert(scratch_.plain.end(), node.plain.begin(),
                          node.plain.end());
    ++plain_sources_;
  }
  const Extra* x = node.extra();
  if (x == nullptr) return;
  for (const QueueEntry& q : x->queues) {
    // Few groups match any one topic; a linear scan by identity beats a map.
    size_t g = 0;
    while (g < group_states_.size() && group_states_[g] != q.group) ++g;
    if (g == group_states_.size()) {
      std::vector<Handle> members;
      if (!spare_members_.empty()) {
        members = std::move(spare_members_.back());
        spare_members_.pop_back();
      }
      // AssignCursors sets the cursor once the members are complete.
      scratch_.groups.push_back(
          Group{q.group->first, std::move(members), nullptr});
      group_sources_.push_back(0);
      group_states_.push_back(q.group);
    }
    std::vector<Handle>& members = scratch_.groups[g].members;
    members.insert(members.end(), q.members.begin(), q.members.end());
    ++group_sources_[g];
  }
}

// Points each group of scratch_ (members complete and deduplicated) at the
// round-robin counter of its member list, making the counters that are
// missing.
void SubjectTree::AssignCursors() {
  size_t missing = 0;
  for (size_t i = 0; i < scratch_.groups.size(); ++i) {
    Group& g = scratch_.groups[i];
    group_keys_.push_back(ListKey(g.members));
    auto& cursors = group_states_[i]->second.cursors;
    auto it = cursors.find(group_keys_[i]);
    g.cursor = it == cursors.end() ? nullptr : &it->second;
    missing += g.cursor == nullptr;
  }
  if (missing == 0) return;
  // Bounded memory: membership churn leaves counters of lists that no topic
  // yields any more. Rather than track which ones, drop them all once there
  // are too many; the live ones are remade on their next match. The cursors
  // just found are dropped too, so this match's groups are pointed again.
  if (cursor_count_ > 0 && cursor_count_ + missing > MaxCursors()) {
    DropCursors();
    for (Group& g : scratch_.groups) g.cursor = nullptr;
  }
  for (size_t i = 0; i < scratch_.groups.size(); ++i) {
    Group& g = scratch_.groups[i];
    if (g.cursor != nullptr) continue;
    GroupState& state = group_states_[i]->second;
    auto [it, made] = state.cursors.try_emplace(group_keys_[i], 0);
    if (made) {
      it->second = CursorSeed(state.cursors_made++);
      ++cursor_count_;
    }
    g.cursor = &it->second;
  }
}

size_t SubjectTree::MaxCursors() const {
  return kMinCursors + 2 * queued_count_;
}

// Drops every round-robin counter, and with them every cached result (they
// point at the counters). REQUIRES: the caller re-points scratch_'s groups.
void SubjectTree::DropCursors() {
  for (auto& [name, state] : groups_) state.cursors.clear();
  cursor_count_ = 0;
  ++generation_;
}

void SubjectTree::ResetCache() {
  cache_.clear();
  cached_handles_ = 0;
  cache_generation_ = generation_;
}

// Evicts an eighth of the cache (at least one entry) in hash order, which is
// unrelated to recency or topic: random eviction, like sublist.go's, without
// an LRU list's per-hit bookkeeping.
void SubjectTree::EvictSome() {
  size_t budget = std::max<size_t>(1, cache_capacity_ / 8);
  for (auto it = cache_.begin(); it != cache_.end() && budget > 0; --budget) {
    cached_handles_ -= HandleCount(it->second);
    cache_.erase(it++);
  }
}

}  // namespace sift::topic
