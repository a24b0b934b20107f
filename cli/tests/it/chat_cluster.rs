//! Chat on several nodes (issue 15): three `streamhub hub --chat-engine` processes on
//! one redis-server behind nginx's stream module (round robin), with real clients.
//! Nodes and Redis are SIGKILLed and restarted mid-burst; every client must still see
//! every message exactly once, in the room's one order.

use crate::cluster;
use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use cluster::{Cluster, Log, connect, connect_as, seq_texts};
use common::redis::Durability;
use streamhub::ChatClient;
use streamhub::chat::protocol::{ErrorCode, Role};
use streamhub::chat::{ChatEvent, JoinOutcome};
use streamhub_test_support::poll_until_async;

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

/// Messages each of the three senders of [`burst_through_the_balancer`] sends.
const PER: usize = 334;

/// Six clients through the balancer (round robin: nodes 1, 2, 3, 1, 2, 3), all joined;
/// the first three send [`PER`] messages each, and 300 have reached the fourth when
/// this returns.
async fn burst_through_the_balancer(
    cluster: &Cluster,
) -> (Vec<(ChatClient, Log)>, Vec<tokio::task::JoinHandle<()>>) {
    let url = cluster.balancer.url();
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(connect(&url, &format!("user{i}")).await);
    }
    for (client, _) in &clients {
        client.join(ROOM).await.unwrap();
    }
    let senders: Vec<ChatClient> = clients[..3].iter().map(|c| c.0.clone()).collect();
    let tasks = burst(&senders, PER);
    poll_until_async("300 messages delivered", Duration::from_secs(30), || {
        clients[3].1.messages(ROOM).len() >= 300
    })
    .await;
    (clients, tasks)
}

/// Waits until each sender had all [`PER`] of its messages acknowledged.
async fn wait_acknowledged(senders: &[(ChatClient, Log)]) {
    poll_until_async(
        "every message acknowledged",
        Duration::from_secs(60),
        || {
            senders
                .iter()
                .all(|c| c.1.count(|e| matches!(e, ChatEvent::Sent { .. })) >= PER)
        },
    )
    .await;
}

async fn wait_all(logs: &[&Log], n: usize, within: Duration) {
    poll_until_async(&format!("{n} messages at every client"), within, || {
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
    let (clients, tasks) = burst_through_the_balancer(&cluster).await;
    let receivers: Vec<&Log> = clients[3..].iter().map(|c| &c.1).collect();
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
    let (clients, tasks) = burst_through_the_balancer(&cluster).await;
    let (epoch, _) = cluster.top(ROOM);
    cluster.redis.restart();
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged = std::time::Instant::now();
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    wait_acknowledged(&clients[..3]).await;
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
    let (clients, tasks) = burst_through_the_balancer(&cluster).await;
    let (old_epoch, _) = cluster.top(ROOM);
    cluster.redis.kill();
    cluster.redis.cut_aof(0.6);
    cluster.redis.start_again();
    for task in tasks {
        task.await.unwrap();
    }
    wait_acknowledged(&clients[..3]).await;
    let (new_epoch, top) = cluster.top(ROOM);
    assert_ne!(new_epoch, old_epoch, "the restart rotated the epoch");
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    // Mirrors catch up: every client has the new epoch's 1..=top within 5 s.
    poll_until_async(
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

/// A node SIGKILLed with 100 viewers in the room: the audience the other nodes report
/// drops within the reports' TTL (10 s; the criterion is 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_viewers_leave_the_count_within_the_ttl() {
    let mut cluster = Cluster::start(3, Durability::None, &[]);
    let (observer, observer_log) = connect(&cluster.nodes[0].url(), "observer").await;
    observer.join(ROOM).await.unwrap();
    let mut viewers = Vec::new();
    for i in 0..100 {
        let (client, _log) = connect(&cluster.nodes[2].url(), &format!("viewer{i}")).await;
        client.join(ROOM).await.unwrap();
        viewers.push(client);
    }
    poll_until_async(
        "101 viewers counted on node 1",
        Duration::from_secs(15),
        || observer_log.viewers(ROOM) == Some(101),
    )
    .await;
    let killed = std::time::Instant::now();
    cluster.nodes[2].kill();
    poll_until_async(
        "the dead node's viewers gone",
        Duration::from_secs(30),
        || observer_log.viewers(ROOM) == Some(1),
    )
    .await;
    let gone = killed.elapsed();
    assert!(gone <= Duration::from_secs(30));
    eprintln!("100 viewers of a SIGKILLed node left the count after {gone:?} (TTL 10 s)");
    drop(viewers);
}

/// Redis and all three nodes restarted: the last 5000 messages come back through
/// `history`, from the stream and the PostgreSQL archive, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_of_everything() {
    let postgres = common::postgres::PostgresServer::start();
    let archive = postgres.url();
    let mut cluster = Cluster::start(
        3,
        Durability::Always,
        &["--lossless-redis", "--archive", &archive],
    );
    let url = cluster.balancer.url();
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(connect(&url, &format!("user{i}")).await);
    }
    for (client, _) in &clients {
        client.join(ROOM).await.unwrap();
    }
    const PER: usize = 2000;
    let senders: Vec<ChatClient> = clients.iter().map(|c| c.0.clone()).collect();
    for task in burst(&senders, PER) {
        task.await.unwrap();
    }
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    wait_all(&logs, 3 * PER, Duration::from_secs(60)).await;
    let sent = seq_texts(&clients[0].1.messages(ROOM));
    let (epoch, top) = cluster.top(ROOM);
    assert_eq!(top, (3 * PER) as u64);
    for (client, _) in &clients {
        client.close(Duration::from_secs(5)).await.unwrap();
    }

    for node in &mut cluster.nodes {
        node.kill();
    }
    cluster.redis.restart();
    for node in &mut cluster.nodes {
        node.start_again();
    }
    let (reader, _) = connect(&url, "reader").await;
    let joined = reader.join(ROOM).await.unwrap();
    assert_eq!(joined.seq, top, "the room's top survived");
    let mut pages = Vec::new();
    let mut before = None;
    let mut read = Vec::new();
    while read.len() < 5000 {
        let page = reader.history(ROOM, before, 100).await.unwrap();
        assert_eq!(page.epoch, epoch);
        assert!(page.has_more, "older messages are still there");
        assert_eq!(page.messages.len(), 100, "full pages");
        before = page.messages.first().map(|m| m.seq);
        pages.push(page.messages.len());
        let mut older = seq_texts(&page.messages);
        older.extend(read);
        read = older;
    }
    let expected: Vec<(u64, String)> = sent[sent.len() - 5000..].to_vec();
    assert_eq!(
        read, expected,
        "the last 5000 messages, no gap, as delivered live"
    );
    eprintln!(
        "after restarting Redis and 3 nodes: {} history pages gave seq {}..={} of epoch {epoch}",
        pages.len(),
        read[0].0,
        read[read.len() - 1].0
    );
}

/// The balancer restarted under 2000 joined clients while messages flow: each ends
/// with one socket, rejoined from its position, with no gap at the join/live boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_of_2000_clients_rejoins_without_a_gap() {
    let limit = cluster::raise_fd_limit();
    assert!(
        limit >= 5000,
        "open-file limit {limit}: too low for 2000 clients"
    );
    let mut cluster = Cluster::start(3, Durability::None, &[]);
    let url = cluster.balancer.url();
    const CLIENTS: usize = 2000;
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        clients.push(connect(&url, &format!("v{i}")).await);
    }
    let joins: Vec<_> = clients
        .iter()
        .map(|(client, _)| {
            let client = client.clone();
            tokio::spawn(async move { client.join(ROOM).await.map(|_| ()) })
        })
        .collect();
    for join in joins {
        join.await.unwrap().unwrap();
    }
    // The sender talks to node 1 directly: its messages flow through the storm.
    let (sender, _) = connect(&cluster.nodes[0].url(), "sender").await;
    sender.join(ROOM).await.unwrap();
    const N: usize = 300;
    for i in 0..50 {
        sender.send(ROOM, &format!("m{i}")).await.unwrap();
    }
    let before = cluster.redis_commands();
    let flowing = {
        let sender = sender.clone();
        tokio::spawn(async move {
            for i in 50..N {
                sender.send(ROOM, &format!("m{i}")).await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let storm = std::time::Instant::now();
    cluster.balancer.restart();
    poll_until_async("every client rejoined", Duration::from_secs(60), || {
        clients
            .iter()
            .all(|(_, log)| log.count(|e| matches!(e, ChatEvent::Joined { .. })) >= 2)
    })
    .await;
    let rejoined = storm.elapsed();
    flowing.await.unwrap();
    let after = cluster.redis_commands();
    let logs: Vec<&Log> = clients.iter().map(|c| &c.1).collect();
    wait_all(&logs, N, Duration::from_secs(30)).await;
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    let mut recovered = 0;
    for (i, (client, log)) in clients.iter().enumerate() {
        let texts: Vec<String> = log.messages(ROOM).into_iter().map(|m| m.text).collect();
        assert_eq!(texts, expected, "client {i}: every message once, in order");
        let seqs: Vec<u64> = log.messages(ROOM).iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=N as u64).collect::<Vec<_>>());
        recovered += log.count(|e| {
            matches!(
                e,
                ChatEvent::Joined {
                    outcome: JoinOutcome::Recovered,
                    ..
                }
            )
        });
        let stats = client.close(Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            stats.connections, 2,
            "client {i}: one reconnect, one socket"
        );
    }
    assert_eq!(
        recovered, CLIENTS,
        "every rejoin recovered from its position"
    );
    let sends = N - 50;
    let calls: Vec<String> = after
        .iter()
        .map(|(name, &n)| (name, n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    eprintln!(
        "{CLIENTS} clients rejoined through a restarted balancer in {rejoined:?} while {sends} \
         messages flowed; Redis calls meanwhile (scripts' own included): {}",
        calls.join(", ")
    );
}

/// A moderator on one node times out, then bans, a viewer on another: the viewer's node
/// pushes the new state, then kicks them, and every node refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_on_one_node_reaches_every_node() {
    let cluster = Cluster::start(3, Durability::None, &[]);
    let (moderator, _) = connect_as(&cluster.nodes[0].url(), "mo", Role::Moderator).await;
    let (eve, eve_log) = connect(&cluster.nodes[1].url(), "eve").await;
    let (eve_elsewhere, _) = connect(&cluster.nodes[2].url(), "eve").await;
    moderator.join(ROOM).await.unwrap();
    eve.join(ROOM).await.unwrap();

    moderator
        .timeout_user(ROOM, "eve", Duration::from_secs(60))
        .await
        .unwrap();
    poll_until_async(
        "eve told of her timeout on node 2",
        Duration::from_secs(5),
        || {
            eve_log.count(|e| {
            matches!(e, ChatEvent::RoomState { state, .. } if state.you.timed_out_until.is_some())
        }) == 1
        },
    )
    .await;
    moderator
        .slow_mode(ROOM, Duration::from_secs(3))
        .await
        .unwrap();
    poll_until_async(
        "slow mode announced on node 2",
        Duration::from_secs(5),
        || {
            eve_log.count(
                |e| matches!(e, ChatEvent::RoomState { state, .. } if state.slow_mode_ms == 3000),
            ) == 1
        },
    )
    .await;

    moderator.ban(ROOM, "eve").await.unwrap();
    poll_until_async("eve kicked on node 2", Duration::from_secs(5), || {
        eve_log.count(|e| matches!(e, ChatEvent::Kicked { .. })) == 1
    })
    .await;
    let refused = eve_elsewhere.join(ROOM).await.unwrap_err();
    assert_eq!(refused.refusal().map(|e| e.code), Some(ErrorCode::Banned));
    moderator.unban(ROOM, "eve").await.unwrap();
    eve_elsewhere.join(ROOM).await.unwrap();
}
