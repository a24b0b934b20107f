//! Chat on several nodes (issue 15): three `streamhub hub --chat-engine` processes on
//! one redis-server behind nginx's stream module (round robin), with real clients.
//! Nodes and Redis are SIGKILLed and restarted mid-burst; every client must still see
//! every message exactly once, in the room's one order.

mod cluster;
mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use cluster::{Cluster, Log, connect, seq_texts, wait_for};
use common::redis::Durability;
use streamhub::ChatClient;
use streamhub::chat::{ChatEvent, JoinOutcome};

const ROOM: &str = "cam1";

/// `senders` clients each enqueue `per_sender` messages ("sK I"), concurrently.
fn burst(senders: &[ChatClient], per_sender: usize) -> Vec<tokio::task::JoinHandle<()>> {
    senders
        .iter()
        .enumerate()
        .map(|(k, client)| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..per_sender {
                    client.enqueue(ROOM, &format!("s{k} {i}")).await.unwrap();
                }
            })
        })
        .collect()
}

/// Every receiver saw seq 1..=n exactly once, in order, the same sequence; each sender's
/// messages appear in the order it sent them.
fn assert_one_order(logs: &[&Log], n: u64, senders: usize, per_sender: usize) {
    let first = seq_texts(&logs[0].messages(ROOM));
    assert_eq!(
        first.iter().map(|m| m.0).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "seq 1..={n} exactly once, in order"
    );
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(
            seq_texts(&log.messages(ROOM)),
            first,
            "client {i}: the same order"
        );
    }
    for k in 0..senders {
        let own: Vec<&str> = first
            .iter()
            .map(|m| m.1.as_str())
            .filter(|t| t.starts_with(&format!("s{k} ")))
            .collect();
        let expected: Vec<String> = (0..per_sender).map(|i| format!("s{k} {i}")).collect();
        assert_eq!(
            own, expected,
            "sender {k}'s messages once each, in its order"
        );
    }
}

async fn wait_all(logs: &[&Log], n: usize, within: Duration) {
    wait_for(&format!("{n} messages at every client"), within, || {
        logs.iter().all(|log| log.messages(ROOM).len() >= n)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_on_three_nodes_make_one_order_for_every_receiver() {
    let cluster = Cluster::start(3, Durability::None, &[]);
    let mut clients = Vec::new();
    // A sender and a receiver on each node, straight to it.
    for (i, node) in cluster.nodes.iter().enumerate() {
        clients.push(connect(&node.url(), &format!("sender{i}")).await);
        clients.push(connect(&node.url(), &format!("receiver{i}")).await);
    }
    for (client, _) in &clients {
        client.join(ROOM).await.unwrap();
    }
    let senders: Vec<ChatClient> = clients.iter().step_by(2).map(|c| c.0.clone()).collect();
    let started = std::time::Instant::now();
    for task in burst(&senders, 334) {
        task.await.unwrap();
    }
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    wait_all(&logs, 1002, Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    assert_one_order(&logs, 1002, 3, 334);
    assert_eq!(cluster.top(ROOM).1, 1002);
    eprintln!("1002 messages from 3 nodes at 6 clients on 3 nodes in {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_loses_and_repeats_nothing() {
    let mut cluster = Cluster::start(3, Durability::None, &[]);
    let url = cluster.balancer.url();
    // Round robin: clients 0..6 land on nodes 1, 2, 3, 1, 2, 3.
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(connect(&url, &format!("user{i}")).await);
    }
    for (client, _) in &clients {
        client.join(ROOM).await.unwrap();
    }
    let senders: Vec<ChatClient> = clients[..3].iter().map(|c| c.0.clone()).collect();
    let receivers: Vec<&Log> = clients[3..].iter().map(|c| &c.1).collect();
    const PER: usize = 334;
    let tasks = burst(&senders, PER);
    wait_for("300 messages delivered", Duration::from_secs(30), || {
        receivers[0].messages(ROOM).len() >= 300
    })
    .await;
    let in_flight = 3 * PER - receivers[1].messages(ROOM).len();
    cluster.nodes[1].kill();
    for task in tasks {
        task.await.unwrap();
    }
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    wait_all(&logs, 3 * PER, Duration::from_secs(60)).await;
    assert_one_order(&logs, (3 * PER) as u64, 3, PER);
    assert_eq!(
        cluster.top(ROOM).1,
        (3 * PER) as u64,
        "one seq per client_msg_id: the room's top is the number of messages"
    );
    let mut resends = 0;
    let mut reconnects = 0;
    for (client, _) in &clients {
        let stats = client.close(Duration::from_secs(10)).await.unwrap();
        resends += stats.resends;
        reconnects += stats.connections - 1;
    }
    assert!(reconnects >= 2, "the killed node's two clients reconnected");
    eprintln!(
        "node 2 killed with {in_flight} of {} messages not yet at its receiver: \
         {reconnects} reconnects, {resends} resends, every client saw 1..={} once",
        3 * PER,
        3 * PER
    );
}

/// Redis killed and started again mid-burst, with every write fsynced: nothing lost,
/// nothing repeated, one epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossless_redis_restarted_mid_burst_loses_nothing() {
    let mut cluster = Cluster::start(3, Durability::Always, &["--lossless-redis"]);
    let url = cluster.balancer.url();
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(connect(&url, &format!("user{i}")).await);
    }
    for (client, _) in &clients {
        client.join(ROOM).await.unwrap();
    }
    let senders: Vec<ChatClient> = clients[..3].iter().map(|c| c.0.clone()).collect();
    const PER: usize = 334;
    let tasks = burst(&senders, PER);
    wait_for("300 messages delivered", Duration::from_secs(30), || {
        clients[3].1.messages(ROOM).len() >= 300
    })
    .await;
    let (epoch, _) = cluster.top(ROOM);
    cluster.redis.restart();
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged = std::time::Instant::now();
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    wait_for(
        "every message acknowledged",
        Duration::from_secs(60),
        || {
            clients[..3]
                .iter()
                .all(|c| c.1.count(|e| matches!(e, ChatEvent::Sent { .. })) >= PER)
        },
    )
    .await;
    wait_all(&logs, 3 * PER, Duration::from_secs(5)).await;
    let caught_up = acknowledged.elapsed();
    assert_one_order(&logs, (3 * PER) as u64, 3, PER);
    assert_eq!(cluster.top(ROOM), (epoch.clone(), (3 * PER) as u64));
    for log in &logs {
        assert!(
            log.messages(ROOM).iter().all(|m| m.epoch == epoch),
            "one epoch"
        );
    }
    eprintln!(
        "lossless Redis restarted mid-burst: every client has 1..={} in epoch {epoch}; the last client caught up {caught_up:?} after the last acknowledgement",
        3 * PER
    );
}

/// Redis killed without fsync and started again without the tail of its AOF: clients
/// may lose acknowledged messages, but are told (a new epoch), never get a number twice
/// and never have a new message dropped as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_tail_starts_a_new_epoch_and_reuses_no_number() {
    let mut cluster = Cluster::start(3, Durability::Lossy, &[]);
    let url = cluster.balancer.url();
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(connect(&url, &format!("user{i}")).await);
    }
    for (client, _) in &clients {
        client.join(ROOM).await.unwrap();
    }
    let senders: Vec<ChatClient> = clients[..3].iter().map(|c| c.0.clone()).collect();
    const PER: usize = 334;
    let tasks = burst(&senders, PER);
    wait_for("300 messages delivered", Duration::from_secs(30), || {
        clients[3].1.messages(ROOM).len() >= 300
    })
    .await;
    let (old_epoch, _) = cluster.top(ROOM);
    cluster.redis.kill();
    cluster.redis.cut_aof(0.6);
    cluster.redis.start_again();
    for task in tasks {
        task.await.unwrap();
    }
    wait_for(
        "every message acknowledged",
        Duration::from_secs(60),
        || {
            clients[..3]
                .iter()
                .all(|c| c.1.count(|e| matches!(e, ChatEvent::Sent { .. })) >= PER)
        },
    )
    .await;
    let (new_epoch, top) = cluster.top(ROOM);
    assert_ne!(new_epoch, old_epoch, "the restart rotated the epoch");
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    // Mirrors catch up: every client has the new epoch's 1..=top within 5 s.
    wait_for(
        "the new epoch at every client",
        Duration::from_secs(5),
        || {
            logs.iter().all(|log| {
                log.messages(ROOM)
                    .iter()
                    .filter(|m| m.epoch == new_epoch)
                    .count() as u64
                    >= top
            })
        },
    )
    .await;
    let mut by_position: HashMap<(String, u64), String> = HashMap::new();
    let mut twice_by_text = 0;
    for (i, log) in logs.iter().enumerate() {
        let messages = log.messages(ROOM);
        let mut per_epoch: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for m in &messages {
            per_epoch.entry(&m.epoch).or_default().push(m.seq);
            let earlier = by_position.insert((m.epoch.clone(), m.seq), m.text.clone());
            if let Some(earlier) = earlier {
                assert_eq!(
                    earlier, m.text,
                    "({}, {}) named two messages",
                    m.epoch, m.seq
                );
            }
        }
        for (epoch, seqs) in &per_epoch {
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "client {i}: epoch {epoch} in order, no repeat"
            );
        }
        assert_eq!(
            per_epoch
                .get(new_epoch.as_str())
                .cloned()
                .unwrap_or_default(),
            (1..=top).collect::<Vec<_>>(),
            "client {i}: every message of the new epoch, none dropped as a duplicate"
        );
        let mut texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
        let all = texts.len();
        texts.sort();
        texts.dedup();
        twice_by_text += all - texts.len();
        let told = log.count(|e| {
            matches!(
                e,
                ChatEvent::Joined {
                    outcome: JoinOutcome::EpochChanged | JoinOutcome::Missed(_),
                    ..
                }
            )
        });
        let saw_new = messages.iter().any(|m| m.epoch == new_epoch);
        assert!(told > 0 || saw_new, "client {i} learned of the new epoch");
    }
    let old_seen = by_position.keys().filter(|k| k.0 == old_epoch).count();
    let mut texts: Vec<&String> = by_position.values().collect();
    texts.sort();
    texts.dedup();
    eprintln!(
        "lossy Redis: {old_seen} numbers of the old epoch seen, new epoch 1..={top}; \
         {} of {} messages reached no client (lost with the tail); texts delivered in both \
         epochs (sent again after the tail lost them): {twice_by_text} over 6 clients",
        3 * PER - texts.len(),
        3 * PER
    );
}
