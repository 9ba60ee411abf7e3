//! Membership: the gossiper, the ring built from what it learns, and the
//! set of nodes believed alive.
//!
//! Gossip carries every member's addresses, zone, weight and ring tokens.
//! Whenever that metadata changes, the ring is rebuilt from it
//! (`Ring::from_specs`, which gives the same ring on every node for the same
//! members), and the transport learns the addresses. A node that is down
//! stays on the ring: failure is not departure. Only `Left` members leave it.
//!
//! A node's tokens are chosen once, when it first joins, by
//! `Ring::allocate_tokens` on the ring it has learned from its seeds, and
//! persisted in `<data_dir>/tokens` so that a restart keeps its place.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;

use kv_gossip::{Event, GossipConfig, GossipMessage, Gossiper, Member, Status};
use kv_ring::{Balance, NewNode, NodeSpec, Ring, RingConfig, Token};
use kv_types::{Clock, NodeId};
use kv_wire::ClusterSettings;

use crate::identity;
use crate::transport::TcpTransport;

/// Bound on how long a joining node waits to hear the cluster from its seeds
/// before choosing its tokens.
pub const JOIN_WAIT: Duration = Duration::from_secs(10);

/// The gossip transport: encodes and hands messages to [`TcpTransport`].
pub struct GossipLink(pub Arc<TcpTransport>);

impl kv_gossip::Transport for GossipLink {
    fn send(&self, to: &str, msg: GossipMessage) {
        match msg.encode() {
            Ok(bytes) => self.0.send_gossip(to, Bytes::from(bytes)),
            Err(e) => tracing::warn!(error = %e, "gossip message not sent"),
        }
    }
}

/// This node's view of the cluster.
pub struct Membership {
    me: NodeId,
    gossiper: Mutex<Gossiper<GossipLink>>,
    ring: RwLock<Arc<Ring>>,
    alive: RwLock<HashSet<NodeId>>,
    transport: Arc<TcpTransport>,
    ring_config: RingConfig,
}

impl Membership {
    /// Starts gossip for this node.
    pub fn new(
        config: GossipConfig,
        ring_config: RingConfig,
        clock: Arc<dyn Clock>,
        transport: Arc<TcpTransport>,
    ) -> Result<Self> {
        let me = config.id;
        let gossiper = Gossiper::new(config, clock, GossipLink(Arc::clone(&transport)))
            .context("invalid gossip configuration")?;
        let membership = Self {
            me,
            gossiper: Mutex::new(gossiper),
            ring: RwLock::new(Arc::new(Ring::default())),
            alive: RwLock::new(HashSet::from([me])),
            transport,
            ring_config,
        };
        membership.refresh();
        Ok(membership)
    }

    fn gossiper(&self) -> std::sync::MutexGuard<'_, Gossiper<GossipLink>> {
        // Gossip state is updated member by member; a panic in one update
        // leaves the others valid, so a poisoned lock is still usable.
        self.gossiper.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One gossip round. Returns the members that just came back up, whose
    /// hints should be replayed.
    pub fn tick(&self) -> Vec<NodeId> {
        let mut g = self.gossiper();
        g.tick();
        self.after_gossip(&mut g)
    }

    /// Applies one gossip message from a peer. Returns the members that just
    /// came back up.
    pub fn handle(&self, payload: &[u8]) -> Vec<NodeId> {
        let msg = match GossipMessage::decode(payload) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(error = %e, "bad gossip message dropped");
                return Vec::new();
            }
        };
        tracing::trace!(?msg, "gossip in");
        let mut g = self.gossiper();
        g.handle(msg);
        self.after_gossip(&mut g)
    }

    fn after_gossip(&self, g: &mut Gossiper<GossipLink>) -> Vec<NodeId> {
        let mut up = Vec::new();
        let mut changed = false;
        let mut liveness_changed = false;
        for event in g.drain_events() {
            tracing::info!(?event, "membership");
            match event {
                Event::Up { id } | Event::Restarted { id, .. } => {
                    self.transport.peer_up(id);
                    up.push(id);
                    liveness_changed = true;
                }
                Event::Joined { id } => {
                    up.push(id);
                    changed = true;
                }
                Event::Down { .. } | Event::Suspected { .. } => liveness_changed = true,
                // Status, metadata and anything new: rebuild to be safe.
                _ => changed = true,
            }
        }
        if changed {
            self.rebuild_ring(g);
        }
        if changed || liveness_changed {
            self.refresh_alive(g);
        }
        up
    }

    /// Rebuilds ring, addresses and liveness from the gossiper's state.
    fn refresh(&self) {
        let g = self.gossiper();
        self.rebuild_ring(&g);
        self.refresh_alive(&g);
    }

    fn rebuild_ring(&self, g: &Gossiper<GossipLink>) {
        let specs: Vec<NodeSpec> = g
            .members()
            .filter(|m| m.meta.status != Status::Left && !m.meta.tokens.is_empty())
            .map(spec_of)
            .collect();
        for m in g.members() {
            self.transport.set_addr(m.id, &m.meta.gossip_addr);
        }
        match Ring::from_specs(self.ring_config, specs) {
            Ok(ring) => {
                *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
            }
            Err(e) => tracing::error!(error = %e, "gossiped ring is invalid; keeping the old one"),
        }
    }

    fn refresh_alive(&self, g: &Gossiper<GossipLink>) {
        let alive: HashSet<NodeId> = g
            .members()
            .filter(|m| m.id == self.me || m.is_up())
            .map(|m| m.id)
            .collect();
        *self.alive.write().unwrap_or_else(|e| e.into_inner()) = alive;
    }

    /// `key`'s first `n` home replicas, through the ring's allocation-free
    /// lookup. Empty (so every quorum is unavailable) only if `n` exceeds
    /// the ring's replica bound, which configuration validation prevents.
    pub fn home_replicas(&self, key: &[u8], n: usize) -> Vec<NodeId> {
        match self.ring().preference_list(key, n) {
            Ok(list) => list.to_vec(),
            Err(e) => {
                tracing::error!(error = %e, "no preference list");
                Vec::new()
            }
        }
    }

    /// The current ring.
    pub fn ring(&self) -> Arc<Ring> {
        Arc::clone(&self.ring.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether `node` is believed alive.
    pub fn is_alive(&self, node: NodeId) -> bool {
        self.alive
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&node)
    }

    /// Every member as gossip knows it.
    pub fn members(&self) -> Vec<Member> {
        self.gossiper().members().cloned().collect()
    }

    /// Number of members that carry tokens (are on the ring).
    fn members_with_tokens(&self) -> usize {
        self.gossiper()
            .members()
            .filter(|m| !m.meta.tokens.is_empty())
            .count()
    }

    /// Whether a live member with a smaller id is joining and has no tokens
    /// yet. Joins are taken in id order: two nodes choosing tokens against
    /// the same ring would cut the same slices, and one would own nothing.
    fn earlier_joiner_pending(&self) -> bool {
        self.gossiper().members().any(|m| {
            m.id < self.me
                && m.is_up()
                && m.meta.status == Status::Joining
                && m.meta.tokens.is_empty()
        })
    }

    /// Waits, up to [`JOIN_WAIT`], until the seeds have told us the ring and
    /// no earlier joiner is still choosing its tokens.
    async fn wait_for_ring(&self, interval: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + JOIN_WAIT;
        // Gossip rounds run in the background; poll a few times a round.
        let poll = interval / 4;
        while tokio::time::Instant::now() < deadline {
            if self.members_with_tokens() > 0 && !self.earlier_joiner_pending() {
                // One more round, so that tokens chosen just now by an
                // earlier joiner reach us.
                tokio::time::sleep(interval).await;
                if !self.earlier_joiner_pending() {
                    return Ok(());
                }
            }
            tokio::time::sleep(poll).await;
        }
        if self.members_with_tokens() == 0 {
            anyhow::bail!(
                "no seed answered within {JOIN_WAIT:?}; refusing to start a separate cluster"
            );
        }
        tracing::warn!(
            "an earlier joiner did not finish within {JOIN_WAIT:?}; choosing tokens anyway"
        );
        Ok(())
    }

    /// Takes this node's place on the ring: its persisted tokens, or new ones
    /// chosen against the ring learned from the seeds (waiting up to
    /// [`JOIN_WAIT`] to hear from them).
    pub async fn join(
        &self,
        data_dir: &std::path::Path,
        weight: u32,
        zone: Option<&str>,
        has_seeds: bool,
        interval: Duration,
    ) -> Result<()> {
        let path: PathBuf = data_dir.join("tokens");
        let tokens = match std::fs::read_to_string(&path) {
            Ok(text) => {
                parse_tokens(&text).with_context(|| format!("{} is corrupt", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if has_seeds {
                    self.wait_for_ring(interval).await?;
                }
                let tokens = self
                    .ring()
                    .allocate_tokens(&NewNode {
                        id: self.me,
                        weight,
                        zone: zone.map(str::to_owned),
                    })
                    .context("cannot choose ring tokens")?;
                let text: String = tokens.iter().map(|t| format!("{}\n", t.0)).collect();
                identity::write_atomically(data_dir, "tokens", &text)?;
                tokens
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        {
            let mut g = self.gossiper();
            g.set_tokens(tokens.iter().map(|t| t.0).collect())
                .context("tokens rejected by gossip")?;
            g.set_status(Status::Normal);
        }
        self.refresh();
        Ok(())
    }
}

/// The settings every peer must share with a node that keeps `n` replicas
/// of each key on a ring built with `ring`.
pub fn cluster_settings(n: u8, ring: &RingConfig) -> ClusterSettings {
    let balance = match ring.balance {
        Balance::Global => "global",
        Balance::PerZone => "per-zone",
        _ => "unknown",
    };
    ClusterSettings {
        replicas: n,
        vnodes_per_weight: ring.vnodes_per_weight,
        balance: balance.to_owned(),
    }
}

fn spec_of(m: &Member) -> NodeSpec {
    NodeSpec {
        id: m.id,
        weight: m.meta.weight,
        zone: (!m.meta.zone.is_empty()).then(|| m.meta.zone.clone()),
        tokens: m.meta.tokens.iter().map(|&t| Token(t)).collect(),
    }
}

fn parse_tokens(text: &str) -> Result<Vec<Token>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(Token(l.trim().parse::<u64>()?)))
        .collect()
}

/// kv-quorum's placement seam over the gossiped ring.
pub struct RingPlacement(pub Arc<Membership>);

impl kv_quorum::Placement for RingPlacement {
    fn preference_list(&self, key: &[u8], n: usize) -> Vec<NodeId> {
        self.0.home_replicas(key, n)
    }

    fn fallbacks(&self, key: &[u8], n: usize) -> Box<dyn Iterator<Item = NodeId> + '_> {
        let ring = self.0.ring();
        let rest: Vec<NodeId> = ring.successors(key).skip(n).collect();
        Box::new(rest.into_iter())
    }
}

/// kv-quorum's liveness seam over the failure detector.
pub struct GossipLiveness(pub Arc<Membership>);

impl kv_quorum::Liveness for GossipLiveness {
    fn is_alive(&self, node: NodeId) -> bool {
        self.0.is_alive(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse() {
        assert_eq!(parse_tokens("1\n2\n\n").unwrap(), vec![Token(1), Token(2)]);
        assert!(parse_tokens("x\n").is_err());
    }
}
