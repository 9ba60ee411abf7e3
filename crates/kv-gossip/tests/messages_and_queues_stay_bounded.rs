//! Every limit holds: message size with huge token lists, entries per
//! message, the event queue, members known, and configuration bounds.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use kv_gossip::message::{Body, Digest, Update};
use kv_gossip::{
    Event, GossipConfig, GossipError, GossipMessage, Gossiper, MAX_MESSAGE_BYTES, MAX_TOKENS,
    MemberMeta, Status, Transport, Version,
};
use kv_types::{ManualClock, NodeId};

#[derive(Clone, Default)]
struct Recorder(Rc<RefCell<Vec<(String, GossipMessage)>>>);

impl Transport for Recorder {
    fn send(&self, to: &str, msg: GossipMessage) {
        self.0.borrow_mut().push((to.to_owned(), msg));
    }
}

fn gossiper(cfg: GossipConfig) -> (Gossiper<Recorder>, Recorder) {
    let rec = Recorder::default();
    let g = Gossiper::new(cfg, Arc::new(ManualClock::new()), rec.clone()).expect("valid config");
    (g, rec)
}

fn update(id: u64, tokens: usize) -> Update {
    Update {
        id: NodeId(id),
        version: Version {
            generation: 1,
            heartbeat: 5,
        },
        meta: Some(MemberMeta {
            version: 1,
            status: Status::Normal,
            gossip_addr: format!("10.0.0.{id}:7000"),
            client_addr: format!("10.0.0.{id}:8000"),
            zone: "z".into(),
            weight: 1,
            tokens: (0..tokens as u64).map(|t| u64::MAX - t).collect(),
            settings: String::new(),
        }),
    }
}

fn feed(g: &mut Gossiper<Recorder>, updates: Vec<Update>) {
    g.handle(GossipMessage {
        from: NodeId(u64::MAX),
        from_addr: "elsewhere:1".into(),
        body: Body::Ack2 { updates },
    });
}

#[test]
fn answers_fit_in_a_message_even_with_max_tokens() {
    let (mut a, rec) = gossiper(GossipConfig::new(NodeId(1), 1, "a:1"));
    for chunk in 0..20u64 {
        feed(
            &mut a,
            (2 + chunk * 10..12 + chunk * 10)
                .map(|id| update(id, MAX_TOKENS))
                .collect(),
        );
    }
    assert_eq!(a.members().count(), 201);
    // A newcomer that knows nothing opens an exchange: the answer must be
    // cut to fit, not sent oversize.
    a.handle(GossipMessage {
        from: NodeId(999),
        from_addr: "b:1".into(),
        body: Body::Syn {
            digests: vec![],
            complete: true,
        },
    });
    let sent = rec.0.borrow();
    let (_, ack) = sent.last().unwrap();
    let Body::Ack { updates, .. } = &ack.body else {
        panic!("expected an ack, got {ack:?}");
    };
    assert!(!updates.is_empty());
    assert!(updates.len() < 201, "no truncation happened");
    assert!(
        ack.encoded_len() <= MAX_MESSAGE_BYTES,
        "{}",
        ack.encoded_len()
    );
    ack.encode().unwrap();
    assert!(a.stats().entries_truncated > 0);
}

#[test]
fn syn_lists_a_bounded_window_that_rotates() {
    let mut cfg = GossipConfig::new(NodeId(1), 1, "a:1");
    cfg.max_digests_per_message = 16;
    let (mut a, rec) = gossiper(cfg);
    feed(&mut a, (2..102).map(|id| update(id, 0)).collect());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        a.tick();
    }
    for (_, m) in rec.0.borrow().iter() {
        if let Body::Syn { digests, complete } = &m.body {
            assert!(digests.len() <= 16);
            assert!(!complete);
            assert_eq!(digests[0].id, NodeId(1), "own digest always first");
            seen.extend(digests.iter().map(|d: &Digest| d.id));
        }
    }
    assert_eq!(seen.len(), 101, "the window did not cover every member");
}

#[test]
fn event_queue_and_member_count_are_bounded() {
    let mut cfg = GossipConfig::new(NodeId(1), 1, "a:1");
    cfg.max_events = 10;
    cfg.max_members = 50;
    let (mut a, _) = gossiper(cfg);
    feed(&mut a, (2..202).map(|id| update(id, 0)).collect());
    assert_eq!(a.members().count(), 50);
    assert_eq!(a.stats().updates_refused, 151);
    let events: Vec<Event> = a.drain_events().collect();
    assert_eq!(events.len(), 10);
    assert_eq!(a.stats().events_dropped, 39);
}

#[test]
fn oversized_updates_and_configs_are_refused() {
    let (mut a, _) = gossiper(GossipConfig::new(NodeId(1), 1, "a:1"));
    feed(&mut a, vec![update(2, MAX_TOKENS + 1)]);
    assert!(a.member(NodeId(2)).is_none());
    assert_eq!(a.stats().updates_refused, 1);
    assert!(matches!(
        a.set_tokens(vec![0; MAX_TOKENS + 1]),
        Err(GossipError::TooManyTokens { .. })
    ));

    let clock = Arc::new(ManualClock::new());
    let mut cfg = GossipConfig::new(NodeId(1), 1, "a:1");
    cfg.tokens = vec![0; MAX_TOKENS + 1];
    assert!(Gossiper::new(cfg, clock.clone(), Recorder::default()).is_err());
    let mut cfg = GossipConfig::new(NodeId(1), 1, "a:1");
    cfg.fanout = 0;
    assert!(Gossiper::new(cfg, clock.clone(), Recorder::default()).is_err());
    let mut cfg = GossipConfig::new(NodeId(1), 1, "a:1");
    cfg.max_message_bytes = MAX_MESSAGE_BYTES + 1;
    assert!(Gossiper::new(cfg, clock, Recorder::default()).is_err());
}

#[test]
fn ticks_send_to_at_most_fanout_plus_two() {
    let mut cfg = GossipConfig::new(NodeId(1), 1, "a:1");
    cfg.fanout = 3;
    cfg.seeds = vec!["s1:1".into(), "s2:1".into()];
    let (mut a, rec) = gossiper(cfg);
    feed(&mut a, (2..60).map(|id| update(id, 0)).collect());
    for _ in 0..50 {
        rec.0.borrow_mut().clear();
        a.tick();
        let n = rec.0.borrow().len();
        assert!((3..=5).contains(&n), "{n} peers in one round");
    }
}

#[test]
fn left_members_are_forgotten_and_stay_quarantined() {
    let clock = Arc::new(ManualClock::new());
    let mut cfg = GossipConfig::new(NodeId(1), 1, "a:1");
    cfg.forget_left_after = std::time::Duration::from_secs(10);
    let mut a = Gossiper::new(cfg, clock.clone(), Recorder::default()).expect("valid config");
    let mut left = update(2, 0);
    if let Some(m) = left.meta.as_mut() {
        m.status = Status::Left;
    }
    feed(&mut a, vec![left.clone()]);
    assert!(a.member(NodeId(2)).is_some());
    clock.advance(std::time::Duration::from_secs(11));
    a.tick();
    assert!(a.member(NodeId(2)).is_none(), "left member not forgotten");
    assert!(
        a.drain_events()
            .any(|e| e == Event::Forgotten { id: NodeId(2) })
    );
    // Stale gossip about it cannot bring it back while quarantined.
    feed(&mut a, vec![left]);
    assert!(a.member(NodeId(2)).is_none(), "stale gossip resurrected it");
}
