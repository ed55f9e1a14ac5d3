// The routing index: which subscriptions does a published topic reach?

#ifndef SIFT_BROKER_TOPIC_SUBJECT_TREE_H_
#define SIFT_BROKER_TOPIC_SUBJECT_TREE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace sift::topic {

// SubjectTree maps topic patterns to subscription handles. Not thread-safe:
// owned by the router thread.
//
// The cost of Match grows with the depth of the topic (and the number of
// wildcard branches it meets), not with the number of subscriptions, and a
// bounded cache answers repeated topics with one hash lookup and no heap
// allocation. Modelled on nats-server's sublist.go.
//
//   SubjectTree tree;
//   tree.Insert("orders.*.created", "", 7);
//   tree.Insert("orders.>", "billing", 8);
//   const SubjectTree::MatchResult& r = tree.Match("orders.eu.created");
//   // r.plain == {7}; r.groups == {{"billing", {8}, ...}}
//   for (const auto& g : r.groups) Deliver(SubjectTree::PickMember(g));
//
// Queue groups take turns per eligible member list: a group's round-robin
// state is kept per (group, members eligible for the topic), so members that
// are eligible for different topics (A on "x.>", B on "x.a") each get their
// share of every topic, whatever is published in between.
class SubjectTree {
 public:
  // Opaque to the tree; the router's subscription index.
  using Handle = uint32_t;

  // One queue group among the matches.
  struct Group {
    // Valid while any member is subscribed.
    std::string_view name;
    // Every member whose pattern matched (deduplicated), listed in the same
    // order by every match until the tree changes.
    std::vector<Handle> members;
    // PickMember's round-robin counter. It belongs to this group and this
    // member list, and is shared by every topic whose match yields the same
    // list. Not to the group's name: topics with different eligible members
    // would advance one counter in lockstep, and a member eligible for every
    // other message could be skipped every time (issue 7). Not to the topic:
    // that state would be lost with each cache eviction, and there is no
    // place for it with the cache disabled. Lives as long as the result that
    // holds it (the tree drops counters only together with every cached
    // result, see SubjectTree::cursor_count).
    uint64_t* cursor;
  };

  struct MatchResult {
    std::vector<Handle> plain;  // subscriptions without a queue group
    // One entry per group name with >= 1 matching member, members merged
    // across all matching patterns.
    std::vector<Group> groups;
    // The caller's, on a result FindCached returned (a cache entry): zero
    // when the entry is made, kept as set while the entry lives. The router
    // remembers the topic's counters there. Never set it on a result of
    // Match or MatchUncached, which may be shared scratch space.
    mutable uint32_t note = 0;
  };

  // cache_capacity bounds the number of cached topics; 0 disables the cache.
  explicit SubjectTree(size_t cache_capacity = 4096);
  ~SubjectTree();

  SubjectTree(const SubjectTree&) = delete;
  SubjectTree& operator=(const SubjectTree&) = delete;

  // Adds subscription `h` on `pattern`, in `queue_group` (empty = none).
  // Returns false, changing nothing, if (pattern, queue_group, h) is already
  // present.
  // REQUIRES: pattern passed ValidatePattern; queue_group passed
  // ValidateQueueGroup.
  bool Insert(std::string_view pattern, std::string_view queue_group, Handle h);

  // Returns false if (pattern, queue_group, h) was not present. Prunes nodes
  // left empty, so subscribe/unsubscribe churn leaves nothing behind.
  bool Remove(std::string_view pattern, std::string_view queue_group, Handle h);

  // Returns every subscription whose pattern matches `topic`. A handle
  // appears at most once in `plain` and at most once in each group. Order
  // within the vectors is unspecified.
  // REQUIRES: topic passed ValidateTopic. The reference is valid until the
  // next call of any non-const method.
  const MatchResult& Match(std::string_view topic);

  // The cached result for `topic`, or nullptr if it is not cached. A topic
  // is cached only after Match or MatchUncached, so a hit means the topic
  // was valid then. Same lifetime as Match's result.
  const MatchResult* FindCached(std::string_view topic);

  // Match without the cache lookup (it still fills the cache): for a caller
  // that FindCached just answered with nullptr.
  // REQUIRES: as for Match.
  const MatchResult& MatchUncached(std::string_view topic);

  // Round-robin choice of one member: the picks on all topics that share
  // g's member list cycle through it, so each member gets an even share of
  // them, whatever other topics are published in between. O(1), no
  // allocation, no hashing.
  // REQUIRES: !g.members.empty().
  static Handle PickMember(const Group& g) {
    return g.members[(*g.cursor)++ % g.members.size()];
  }

  // Number of (pattern, queue_group, handle) entries.
  size_t subscription_count() const { return subscription_count_; }
  // Number of tree nodes, including the root (1 for an empty tree).
  size_t node_count() const { return node_count_; }
  // Matches answered from the cache, and matches computed by walking the tree
  // (every Match when the cache is disabled).
  uint64_t cache_hits() const { return cache_hits_; }
  uint64_t cache_misses() const { return cache_misses_; }
  // Topics currently cached (0 right after an Insert or Remove, or after the
  // round-robin counters were dropped).
  size_t cache_size() const {
    return cache_generation_ == generation_ ? cache_.size() : 0;
  }
  size_t cache_capacity() const { return cache_capacity_; }
  // Round-robin counters held: one per (queue group, member list) that a
  // match has yielded since the group got its first member. Lists whose
  // members left are kept until the group loses its last member; when the
  // count would pass 1024 plus twice the number of queued subscriptions,
  // every counter is dropped, with the whole match cache (whose results
  // point at them), and the live ones are remade on their next match.
  size_t cursor_count() const { return cursor_count_; }

 private:
  class HandleSet;
  struct Node;
  struct Extra;
  struct QueueEntry;
  struct TokenHash;
  struct TokenEq;

  // Transparent hash and equality for std::string keys looked up by
  // std::string_view, so that lookups never build a std::string. Needed
  // because Debian's abseil has its own absl::string_view (not an alias), which
  // the default StringHash accepts but std::string_view does not convert to.
  struct StringViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const {
      return absl::Hash<absl::string_view>{}(
          absl::string_view(s.data(), s.size()));
    }
  };
  struct StringViewEq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const {
      return a == b;
    }
  };

  struct GroupState {
    size_t members = 0;  // (node, handle) memberships across the tree
    // PickMember's round-robin counters, one per member list a match has
    // yielded, keyed by a 64-bit digest of the list (ListKey in the .cc),
    // not a copy: lists may hold 100k members, and two lists with one
    // digest would merely share a counter. A node map: Group::cursor points
    // at the values. Goes with the GroupState when the group loses its last
    // member; see cursor_count for the bound.
    absl::node_hash_map<uint64_t, uint64_t> cursors;
    // Counters made so far, which seeds the next one (CursorSeed in the .cc).
    uint64_t cursors_made = 0;
  };
  // node_hash_map: Group::name points into it, so entries must not move when
  // the table grows.
  using GroupMap = absl::node_hash_map<std::string, GroupState, StringViewHash,
                                       StringViewEq>;

  Node* GetOrAddChild(Node* node, std::string_view token);
  static Node* FindChild(const Node* node, std::string_view token);
  void EraseChild(Node* parent, std::string_view token);
  static Extra& EnsureExtra(Node* node);
  static void Compact(Node* node);
  bool InsertQueued(Node* node, std::string_view group, Handle h);
  bool EraseQueued(Node* node, std::string_view group, Handle h);

  void ResetScratch();
  void Collect(const Node* node, const std::string_view* tokens, size_t n,
               size_t i);
  void AddNode(const Node& node);
  void AssignCursors();
  size_t MaxCursors() const;
  void DropCursors();
  void ResetCache();
  void EvictSome();

  // Constant after construction.
  const size_t cache_capacity_;
  const size_t cache_max_handles_;  // bound on handles held by cached results

  // The tree.
  Node* const root_;  // owned; nodes are variable-sized, see Node::New
  GroupMap groups_;
  size_t subscription_count_ = 0;
  size_t node_count_ = 1;
  // Bumped by every Insert/Remove that changes the tree, and when the
  // round-robin counters are dropped (cached Groups point at them).
  uint64_t generation_ = 0;

  // The match cache: topic -> result, valid while cache_generation_ ==
  // generation_.
  absl::flat_hash_map<std::string, MatchResult, StringViewHash, StringViewEq>
      cache_;
  uint64_t cache_generation_ = 0;
  size_t cached_handles_ = 0;
  uint64_t cache_hits_ = 0;
  uint64_t cache_misses_ = 0;

  // For the bound on the round-robin counters (after the fields FindCached
  // reads, so as not to move them).
  size_t queued_count_ = 0;  // the subscriptions in a queue group
  size_t cursor_count_ = 0;  // sum of groups_[*].cursors.size()

  // Scratch space for computing a match, reused so that a miss with the cache
  // disabled allocates nothing once warm.
  MatchResult scratch_;
  std::vector<std::vector<Handle>> spare_members_;  // recycled Group::members
  // Number of nodes that fed scratch_.groups[i] and scratch_.plain.
  std::vector<uint32_t> group_sources_;
  // The group of scratch_.groups[i], and the key of its member list.
  std::vector<GroupMap::value_type*> group_states_;
  std::vector<uint64_t> group_keys_;
  uint32_t plain_sources_ = 0;
};

}  // namespace sift::topic

#endif  // SIFT_BROKER_TOPIC_SUBJECT_TREE_H_
