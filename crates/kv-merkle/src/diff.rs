//! The diff as a pure state machine: [`DiffInitiator`] on one side,
//! [`respond`] on the other, messages from [`crate::message`] in between.
//!
//! The initiator walks down the tree one level per round trip, comparing the
//! responder's child digests with its own tree and asking next only for the
//! children of nodes that differ. At the buckets it asks for the responder's
//! items and compares them key by key with its own [`LeafSource`], so a
//! bucket that differs only by chance of grouping (a false positive at
//! bucket level) still yields exactly the keys that differ.
//!
//! Both trees may change while a diff runs, since writes keep them current.
//! Each step compares the trees as they are at that step, so a key written
//! during the diff may be reported or missed; the next diff settles it. A
//! key not written during the diff is judged by its state before it: a
//! write elsewhere cannot make its node's digests match (tested in
//! `tests/diff_tolerates_writes_while_it_runs.rs`).

use crate::message::item_cost;
use crate::{
    BucketItems, DiffLimits, DiffRequest, DiffResponse, Digest, Item, LeafSource, MerkleError,
    MerkleTree, PROTOCOL_VERSION, TreeConfig,
};

/// How one key differs, seen from the initiator ("local") side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    /// Only the initiator has the key.
    OnlyLocal {
        /// The initiator's item hash.
        local: Digest,
    },
    /// Only the responder has the key.
    OnlyRemote {
        /// The responder's item hash.
        remote: Digest,
    },
    /// Both have the key, with different item hashes.
    Different {
        /// The initiator's item hash.
        local: Digest,
        /// The responder's item hash.
        remote: Digest,
    },
}

/// A key whose entries differ between the two replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDiff {
    /// The key.
    pub key: Vec<u8>,
    /// Which side has what.
    pub kind: DiffKind,
}

/// What one diff cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Request/response pairs exchanged.
    pub round_trips: u32,
    /// Digests received in `Children` responses.
    pub digests_received: u64,
    /// Items received in `Items` responses.
    pub items_received: u64,
    /// Buckets whose items were compared.
    pub buckets_compared: u64,
}

/// The result of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOutcome {
    /// The differing keys, ordered by bucket and then key.
    pub differences: Vec<KeyDiff>,
    /// False when the diff stopped at [`DiffLimits::differences_max`]: more
    /// keys may differ.
    pub complete: bool,
    /// What it cost.
    pub stats: DiffStats,
}

/// What the initiator does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this request and feed the response to
    /// [`DiffInitiator::on_response`].
    Send(DiffRequest),
    /// The diff is over.
    Done(DiffOutcome),
}

/// The requesting side of a diff: produces [`DiffRequest`]s, consumes
/// [`DiffResponse`]s, and ends with the exact differing keys.
///
/// It holds neither the tree nor the source, only the walk's progress, so
/// the caller can keep writing to both between steps.
#[derive(Debug)]
pub struct DiffInitiator {
    config: TreeConfig,
    limits: DiffLimits,
    phase: Phase,
    sent: Option<Sent>,
    differences: Vec<KeyDiff>,
    stats: DiffStats,
}

#[derive(Debug)]
enum Phase {
    /// Fetching the children of `frontier[pos..]` (nodes at `level` that
    /// differ); `found` collects the differing children.
    Nodes {
        level: u8,
        frontier: Vec<u32>,
        pos: usize,
        found: Vec<u32>,
    },
    /// Fetching the items of `buckets[pos..]`, resuming after `after` in
    /// `buckets[pos]`.
    Buckets {
        buckets: Vec<u32>,
        pos: usize,
        after: Option<Vec<u8>>,
    },
    Done,
}

/// What the request in flight asked for, to check the response against.
#[derive(Debug, Clone, Copy)]
enum Sent {
    Root,
    /// `frontier[start..end]`.
    Nodes {
        start: usize,
        end: usize,
    },
    /// `buckets[start..end]`.
    Items {
        start: usize,
        end: usize,
    },
}

impl Sent {
    fn expects(self) -> &'static str {
        match self {
            Sent::Root => "InSync or Children",
            Sent::Nodes { .. } => "Children",
            Sent::Items { .. } => "Items",
        }
    }
}

impl DiffInitiator {
    /// Starts a diff of `tree` against a peer's: returns the initiator and
    /// the opening request. Fails if `limits` are unworkable for the tree.
    pub fn start(
        tree: &MerkleTree,
        limits: DiffLimits,
    ) -> Result<(Self, DiffRequest), MerkleError> {
        let config = tree.config();
        limits.check(config)?;
        let initiator = Self {
            config,
            limits,
            // The opening request stands for "children of the root".
            phase: Phase::Nodes {
                level: 0,
                frontier: vec![0],
                pos: 1,
                found: Vec::new(),
            },
            sent: Some(Sent::Root),
            differences: Vec::new(),
            stats: DiffStats::default(),
        };
        let request = DiffRequest::Root {
            version: PROTOCOL_VERSION,
            config,
            root: tree.root(),
        };
        Ok((initiator, request))
    }

    /// What the diff has cost so far.
    pub fn stats(&self) -> DiffStats {
        self.stats
    }

    /// Feeds the response to the last request, comparing against the local
    /// `tree` and `source` as they are now; returns the next request or the
    /// outcome. After an error or [`Step::Done`], the diff is over and
    /// further calls fail with [`MerkleError::Finished`].
    pub fn on_response(
        &mut self,
        tree: &MerkleTree,
        source: &impl LeafSource,
        response: DiffResponse,
    ) -> Result<Step, MerkleError> {
        let result = self.handle(tree, source, response);
        if result.is_err() {
            self.phase = Phase::Done;
            self.sent = None;
        }
        result
    }

    fn handle(
        &mut self,
        tree: &MerkleTree,
        source: &impl LeafSource,
        response: DiffResponse,
    ) -> Result<Step, MerkleError> {
        let Some(sent) = self.sent.take() else {
            return Err(MerkleError::Finished);
        };
        if tree.config() != self.config {
            return Err(MerkleError::ConfigMismatch {
                ours: self.config,
                theirs: tree.config(),
            });
        }
        self.stats.round_trips += 1;
        match (sent, response) {
            (Sent::Root, DiffResponse::InSync) => self.phase = Phase::Done,
            (Sent::Root, DiffResponse::Children { digests }) => {
                self.on_children(tree, 0, 1, &digests)?;
            }
            (Sent::Nodes { start, end }, DiffResponse::Children { digests }) => {
                self.on_children(tree, start, end, &digests)?;
            }
            (Sent::Items { start, end }, DiffResponse::Items { buckets, truncated }) => {
                self.on_items(source, start, end, buckets, truncated)?;
            }
            (sent, other) => {
                return Err(MerkleError::UnexpectedResponse {
                    expected: sent.expects(),
                    got: other.name(),
                });
            }
        }
        self.next_step()
    }

    fn on_children(
        &mut self,
        tree: &MerkleTree,
        start: usize,
        end: usize,
        digests: &[Digest],
    ) -> Result<(), MerkleError> {
        let Phase::Nodes {
            level,
            frontier,
            found,
            ..
        } = &mut self.phase
        else {
            return Err(MerkleError::UnexpectedResponse {
                expected: "Items",
                got: "Children",
            });
        };
        let f = self.config.fan_out();
        let nodes = frontier.get(start..end).unwrap_or_default();
        if digests.len() != nodes.len() * f as usize {
            return Err(MerkleError::WrongDigestCount {
                expected: nodes.len() * f as usize,
                got: digests.len(),
            });
        }
        self.stats.digests_received += digests.len() as u64;
        for (&node, remote) in nodes.iter().zip(digests.chunks_exact(f as usize)) {
            // Frontier nodes come from our own walk of a tree of this shape,
            // so they always have children.
            let local = tree
                .children(*level, node)
                .ok_or(MerkleError::NodeOutOfRange {
                    level: *level,
                    index: node,
                    nodes: self.config.nodes_at(*level),
                })?;
            for (c, (l, r)) in (0u32..).zip(local.iter().zip(remote)) {
                if l != r {
                    found.push(node * f + c);
                }
            }
        }
        Ok(())
    }

    fn on_items(
        &mut self,
        source: &impl LeafSource,
        start: usize,
        end: usize,
        listed: Vec<BucketItems>,
        truncated: bool,
    ) -> Result<(), MerkleError> {
        let Phase::Buckets {
            buckets,
            pos,
            after,
        } = &mut self.phase
        else {
            return Err(MerkleError::UnexpectedResponse {
                expected: "Children",
                got: "Items",
            });
        };
        let asked = buckets.get(start..end).unwrap_or_default();
        if let Some(extra) = listed.get(asked.len()) {
            return Err(MerkleError::UnexpectedBucket {
                expected: None,
                got: extra.bucket,
            });
        }
        if !truncated && listed.len() != asked.len() {
            return Err(MerkleError::MissingBuckets {
                asked: asked.len(),
                listed: listed.len(),
            });
        }
        let n = listed.len();
        if truncated && (n == 0 || (n == 1 && listed[0].items.is_empty())) {
            return Err(MerkleError::NoProgress);
        }
        let first_after = after.take();
        let mut next_after = None;
        for (i, (b, &expected)) in listed.into_iter().zip(asked).enumerate() {
            if b.bucket != expected {
                return Err(MerkleError::UnexpectedBucket {
                    expected: Some(expected),
                    got: b.bucket,
                });
            }
            let lower = if i == 0 { first_after.as_deref() } else { None };
            let partial = truncated && i + 1 == n;
            let upper = if partial {
                match b.items.last() {
                    Some(last) => Some(last.key.clone()),
                    None => {
                        // Listed but empty: none of it was sent yet; resume
                        // where this bucket started.
                        next_after = lower.map(<[u8]>::to_vec);
                        continue;
                    }
                }
            } else {
                None
            };
            self.stats.items_received += b.items.len() as u64;
            self.stats.buckets_compared += 1;
            compare_bucket(
                self.config,
                source,
                expected,
                lower,
                upper.as_deref(),
                &b.items,
                &mut self.differences,
            )?;
            if partial {
                next_after = upper;
            }
        }
        if truncated {
            *pos = start + n - 1;
            *after = next_after;
        } else {
            *pos = end;
        }
        Ok(())
    }

    fn next_step(&mut self) -> Result<Step, MerkleError> {
        loop {
            let work_left = !matches!(self.phase, Phase::Done);
            let cap = self.limits.differences_max as usize;
            if !work_left || self.differences.len() >= cap {
                self.differences.truncate(cap);
                self.phase = Phase::Done;
                return Ok(Step::Done(DiffOutcome {
                    differences: std::mem::take(&mut self.differences),
                    complete: !work_left,
                    stats: self.stats,
                }));
            }
            let (request, sent) = match &mut self.phase {
                Phase::Nodes {
                    level,
                    frontier,
                    pos,
                    found,
                } => {
                    if *pos < frontier.len() {
                        let per = self.limits.nodes_per_request_max(self.config) as usize;
                        let start = *pos;
                        let end = (start + per).min(frontier.len());
                        *pos = end;
                        let request = DiffRequest::Children {
                            level: *level,
                            nodes: frontier[start..end].to_vec(),
                        };
                        (request, Sent::Nodes { start, end })
                    } else {
                        let found = std::mem::take(found);
                        self.phase = if found.is_empty() {
                            Phase::Done
                        } else if *level + 1 == self.config.depth() {
                            Phase::Buckets {
                                buckets: found,
                                pos: 0,
                                after: None,
                            }
                        } else {
                            Phase::Nodes {
                                level: *level + 1,
                                frontier: found,
                                pos: 0,
                                found: Vec::new(),
                            }
                        };
                        continue;
                    }
                }
                Phase::Buckets {
                    buckets,
                    pos,
                    after,
                } => {
                    if *pos >= buckets.len() {
                        self.phase = Phase::Done;
                        continue;
                    }
                    let per = self.limits.buckets_per_request_max as usize;
                    let start = *pos;
                    let end = (start + per).min(buckets.len());
                    let request = DiffRequest::Items {
                        buckets: buckets[start..end].to_vec(),
                        after: after.clone(),
                    };
                    (request, Sent::Items { start, end })
                }
                Phase::Done => continue,
            };
            if self.stats.round_trips >= self.limits.round_trips_max {
                return Err(MerkleError::TooManyRoundTrips {
                    max: self.limits.round_trips_max,
                });
            }
            self.sent = Some(sent);
            return Ok(Step::Send(request));
        }
    }
}

/// Runs a whole diff of `tree` over a synchronous `exchange`, which carries
/// one request to the peer and returns its response (in process, it is just
/// [`respond`]; over a network, a blocking call). An asynchronous transport
/// drives [`DiffInitiator`] itself, as this function does.
pub fn run_diff<E, F>(
    tree: &MerkleTree,
    source: &impl LeafSource,
    limits: DiffLimits,
    mut exchange: F,
) -> Result<DiffOutcome, E>
where
    E: From<MerkleError>,
    F: FnMut(&DiffRequest) -> Result<DiffResponse, E>,
{
    let (mut initiator, mut request) = DiffInitiator::start(tree, limits)?;
    loop {
        let response = exchange(&request)?;
        match initiator.on_response(tree, source, response)? {
            Step::Send(next) => request = next,
            Step::Done(outcome) => return Ok(outcome),
        }
    }
}

/// Compares the remote `items` of `bucket` with the local items in the key
/// interval `(lower, upper]` (open ends when `None`), appending the
/// differences in key order.
fn compare_bucket(
    config: TreeConfig,
    source: &impl LeafSource,
    bucket: u32,
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
    remote: &[Item],
    out: &mut Vec<KeyDiff>,
) -> Result<(), MerkleError> {
    // The remote side is untrusted: check order, interval and bucket, since
    // a misplaced key would be reported as missing here.
    let mut prev = lower;
    for item in remote {
        if let Some(p) = prev
            && p >= item.key.as_slice()
        {
            return Err(MerkleError::KeysOutOfOrder {
                previous: p.to_vec(),
                key: item.key.clone(),
            });
        }
        let actual = config.bucket_of(&item.key);
        if actual != bucket {
            return Err(MerkleError::WrongBucket {
                key: item.key.clone(),
                listed: bucket,
                actual,
            });
        }
        prev = Some(&item.key);
    }

    let mut local: Vec<(Vec<u8>, Digest)> = Vec::new();
    for entry in source.bucket_items(bucket, lower) {
        let (key, hash) = entry.map_err(|source| MerkleError::Source { bucket, source })?;
        if upper.is_some_and(|u| key.as_slice() > u) {
            break;
        }
        let prev = local.last().map(|(k, _)| k.as_slice()).or(lower);
        if let Some(p) = prev
            && p >= key.as_slice()
        {
            return Err(MerkleError::KeysOutOfOrder {
                previous: p.to_vec(),
                key,
            });
        }
        local.push((key, hash));
    }

    let (mut l, mut r) = (local.into_iter().peekable(), remote.iter().peekable());
    loop {
        let diff = match (l.peek(), r.peek()) {
            (None, None) => return Ok(()),
            (Some((lk, lh)), Some(ri)) if *lk == ri.key => {
                let d = (*lh != ri.hash).then(|| KeyDiff {
                    key: ri.key.clone(),
                    kind: DiffKind::Different {
                        local: *lh,
                        remote: ri.hash,
                    },
                });
                l.next();
                r.next();
                d
            }
            (Some((lk, _)), Some(ri)) if *lk > ri.key => r.next().map(only_remote),
            (None, Some(_)) => r.next().map(only_remote),
            (Some(_), _) => l.next().map(|(key, local)| KeyDiff {
                key,
                kind: DiffKind::OnlyLocal { local },
            }),
        };
        out.extend(diff);
    }
}

fn only_remote(item: &Item) -> KeyDiff {
    KeyDiff {
        key: item.key.clone(),
        kind: DiffKind::OnlyRemote { remote: item.hash },
    }
}

/// The responding side of a diff: answers one request from `tree` and
/// `source`. It keeps no state between requests.
///
/// Fails when the request breaks the protocol or `limits` (the peer should
/// be told and the diff dropped), or when the source fails.
pub fn respond(
    tree: &MerkleTree,
    source: &impl LeafSource,
    limits: &DiffLimits,
    request: &DiffRequest,
) -> Result<DiffResponse, MerkleError> {
    let config = tree.config();
    limits.check(config)?;
    match request {
        DiffRequest::Root {
            version,
            config: theirs,
            root,
        } => {
            if *version != PROTOCOL_VERSION {
                return Err(MerkleError::VersionMismatch {
                    ours: PROTOCOL_VERSION,
                    theirs: *version,
                });
            }
            if *theirs != config {
                return Err(MerkleError::ConfigMismatch {
                    ours: config,
                    theirs: *theirs,
                });
            }
            if *root == tree.root() {
                return Ok(DiffResponse::InSync);
            }
            children(tree, 0, &[0], limits)
        }
        DiffRequest::Children { level, nodes } => children(tree, *level, nodes, limits),
        DiffRequest::Items { buckets, after } => items(tree, source, buckets, after, limits),
    }
}

fn children(
    tree: &MerkleTree,
    level: u8,
    nodes: &[u32],
    limits: &DiffLimits,
) -> Result<DiffResponse, MerkleError> {
    let config = tree.config();
    if level >= config.depth() {
        return Err(MerkleError::LevelOutOfRange {
            level,
            depth: config.depth(),
        });
    }
    let max = limits.nodes_per_request_max(config) as usize;
    if nodes.is_empty() || nodes.len() > max {
        return Err(MerkleError::RequestSize {
            count: nodes.len(),
            max,
        });
    }
    let mut digests = Vec::with_capacity(nodes.len() * config.fan_out() as usize);
    for &index in nodes {
        let c = tree
            .children(level, index)
            .ok_or(MerkleError::NodeOutOfRange {
                level,
                index,
                nodes: config.nodes_at(level),
            })?;
        digests.extend_from_slice(c);
    }
    Ok(DiffResponse::Children { digests })
}

fn items(
    tree: &MerkleTree,
    source: &impl LeafSource,
    buckets: &[u32],
    after: &Option<Vec<u8>>,
    limits: &DiffLimits,
) -> Result<DiffResponse, MerkleError> {
    let config = tree.config();
    let max = limits.buckets_per_request_max as usize;
    if buckets.is_empty() || buckets.len() > max {
        return Err(MerkleError::RequestSize {
            count: buckets.len(),
            max,
        });
    }
    if let Some(&index) = buckets.iter().find(|&&b| b >= config.buckets()) {
        return Err(MerkleError::NodeOutOfRange {
            level: config.depth(),
            index,
            nodes: config.buckets(),
        });
    }
    let budget = limits.item_bytes_per_message_max as usize;
    let mut used = 0;
    let mut out = Vec::with_capacity(buckets.len());
    for (i, &bucket) in buckets.iter().enumerate() {
        let lower = if i == 0 { after.as_deref() } else { None };
        let mut listed = BucketItems {
            bucket,
            items: Vec::new(),
        };
        for entry in source.bucket_items(bucket, lower) {
            let (key, hash) = entry.map_err(|source| MerkleError::Source { bucket, source })?;
            let cost = item_cost(key.len());
            if cost > budget {
                return Err(MerkleError::ItemTooLarge {
                    key_len: key.len(),
                    max: limits.item_bytes_per_message_max,
                });
            }
            if used + cost > budget {
                out.push(listed);
                return Ok(DiffResponse::Items {
                    buckets: out,
                    truncated: true,
                });
            }
            let prev = listed.items.last().map(|it| it.key.as_slice()).or(lower);
            if let Some(p) = prev
                && p >= key.as_slice()
            {
                return Err(MerkleError::KeysOutOfOrder {
                    previous: p.to_vec(),
                    key,
                });
            }
            used += cost;
            listed.items.push(Item { key, hash });
        }
        out.push(listed);
    }
    Ok(DiffResponse::Items {
        buckets: out,
        truncated: false,
    })
}
