//! The network lock over three API servers at once (three local sandboxes): contention, a lease
//! lapsed in one cluster only, unreachable clusters, and expiry judged on each server's clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cluster::*;
use common::{sandbox, sandbox_with, unique, Sandbox};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};

const NAMES: [&str; 3] = ["us", "eu", "asia"];

/// Three sandboxes named us, eu and asia (listed out of order on purpose).
async fn three() -> Option<(Vec<Sandbox>, Vec<Member>)> {
    let mut boxes = Vec::new();
    let mut members = Vec::new();
    for n in NAMES {
        let sb = sandbox()?;
        members.push(Member {
            name: n.to_string(),
            cluster: sb.cluster().await,
        });
        boxes.push(sb);
    }
    Some((boxes, members))
}

fn req(name: &str, holder: &str, secs: i32) -> LockRequest {
    let mut r = LockRequest::new("default", name, holder, secs);
    r.poll_interval = Duration::from_millis(50);
    r
}

fn member<'a>(members: &'a [Member], name: &str) -> &'a Member {
    members.iter().find(|m| m.name == name).expect("member")
}

async fn holder_in(m: &Member, lease: &str) -> Option<String> {
    m.cluster
        .read("default", lease)
        .await
        .expect("read")
        .and_then(|s| s.holder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_contenders_across_three_clusters_one_wins_twenty_times() {
    let Some((_boxes, members)) = three().await else {
        return;
    };
    contenders(members).await;
}

async fn contenders(members: Vec<Member>) {
    let members = Arc::new(members);
    for round in 0..20 {
        let lease = unique("race");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let run = |who: &'static str| {
            let (members, barrier, lease) = (members.clone(), barrier.clone(), lease.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                acquire_span(&members, &req(&lease, who, 60), &CancellationToken::new()).await
            })
        };
        let (a, b) = (run("alice"), run("bob"));
        let (a, b) = (a.await.expect("join"), b.await.expect("join"));
        let (winner, state, loser_err) = match (a, b) {
            (Ok(s), Err(e)) => ("alice", s, e),
            (Err(e), Ok(s)) => ("bob", s, e),
            (a, b) => panic!("round {round}: exactly one must win, got {a:?} and {b:?}"),
        };
        match &loser_err {
            SpanError::Held {
                holder,
                cluster,
                retry_after,
                ..
            } => {
                assert_eq!(holder, winner, "round {round}: the loser is told who won");
                // Both start at the first cluster by name, so they meet there.
                assert_eq!(cluster, "asia", "round {round}");
                assert_eq!(*retry_after, Duration::from_secs(60), "round {round}");
                assert!(loser_err.to_string().contains("retry after 1 minute(s)"));
            }
            other => panic!("round {round}: expected Held, got {other}"),
        }
        // The winner holds every Lease; the loser left nothing behind anywhere.
        assert_eq!(state.leases.len(), 3);
        let readings = read_span(&members, "default", &lease).await.expect("read");
        assert_eq!(span_holder(&readings), Some(winner), "round {round}");
        assert!(still_ours(&state, &readings), "round {round}");
        for r in release_span(&members, &state).await {
            assert_eq!(
                r.1.expect("release"),
                ReleaseOutcome::Cleared,
                "round {round}"
            );
        }
        let after = read_span(&members, "default", &lease).await.expect("read");
        assert_eq!(span_holder(&after), None);
    }
}

/// Holding the lock is exclusive over time too: two waiting contenders take turns, and each,
/// while inside, sees itself as the holder in all three clusters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_contenders_take_turns() {
    let Some((_boxes, members)) = three().await else {
        return;
    };
    turns(members).await;
}

async fn turns(members: Vec<Member>) {
    let members = Arc::new(members);
    let lease = unique("turns");
    let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let (members, lease, inside) = (members.clone(), lease.clone(), inside.clone());
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            for _ in 0..3 {
                let mut r = req(&lease, who, 60);
                r.wait_timeout = Some(Duration::from_secs(120));
                let s = acquire_span(&members, &r, &CancellationToken::new())
                    .await
                    .expect("acquire with waiting");
                assert_eq!(
                    inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                let readings = read_span(&members, "default", &lease).await.expect("read");
                assert_eq!(span_holder(&readings), Some(who));
                tokens.push(s.fencing_token());
                inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                for (_, r) in release_span(&members, &s).await {
                    r.expect("release");
                }
            }
            tokens
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("join"));
    }
    // Every holding got a distinct token, ordered in every cluster.
    all.sort_by_key(|t| t.0["asia"]);
    for w in all.windows(2) {
        assert!(
            w[1].behind(&w[0]).is_none() && w[0].behind(&w[1]).is_some(),
            "{:?}",
            all
        );
    }
}

#[tokio::test]
async fn lease_lapsed_in_one_cluster_only_loses_the_lock() {
    let Some((_boxes, members)) = three().await else {
        return;
    };
    lapse(&members).await;
}

async fn lapse(members: &[Member]) {
    let members = members.to_vec();
    let lease = unique("lapse");
    let cancel = CancellationToken::new();
    let a = acquire_span(&members, &req(&lease, "alice", 60), &cancel)
        .await
        .expect("acquire");
    // eu's Lease lapses: its renewTime is pushed an hour into the past, by hand.
    let eu = member(&members, "eu");
    let api: Api<Lease> = Api::namespaced(eu.cluster.client().clone(), "default");
    let mut l = api.get(&lease).await.expect("get");
    let spec = l.spec.as_mut().expect("spec");
    let old = spec.renew_time.clone().expect("renew time").0;
    let past = old
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(3600))
        .unwrap();
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        past,
    ));
    api.replace(&lease, &PostParams::default(), &l)
        .await
        .expect("age eu's lease");

    // Nobody holds the whole lock any more.
    let readings = read_span(&members, "default", &lease).await.expect("read");
    assert_eq!(span_holder(&readings), None);
    assert!(!still_ours(&a, &readings));
    // Alice's renewal says she lost it, naming eu, although nobody took it.
    match renew_span(&members, &a).await {
        Err(e @ SpanError::Lapsed { .. }) => {
            assert!(
                matches!(&e, SpanError::Lapsed { cluster, .. } if cluster == "eu"),
                "{e}"
            );
            assert!(e.to_string().contains("in cluster \"eu\" lapsed at"), "{e}");
        }
        other => panic!("expected Lapsed in eu, got {other:?}"),
    }
    // Bob is still kept out by asia (live), and takes nothing: not even the lapsed eu Lease.
    match acquire_span(&members, &req(&lease, "bob", 60), &cancel).await {
        Err(SpanError::Held {
            cluster, holder, ..
        }) => {
            assert_eq!((cluster.as_str(), holder.as_str()), ("asia", "alice"));
        }
        other => panic!("expected Held, got {other:?}"),
    }
    assert_eq!(holder_in(eu, &lease).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn unreachable_cluster_during_acquire_and_renew() {
    let Some((mut boxes, members)) = three().await else {
        return;
    };
    let cancel = CancellationToken::new();

    // eu down during acquire: fails naming eu; asia (taken before it) is given back.
    let lease = unique("down");
    let eu_box = boxes.remove(1);
    drop(eu_box);
    match acquire_span(&members, &req(&lease, "alice", 60), &cancel).await {
        Err(e @ SpanError::Cluster { .. }) => {
            assert!(
                matches!(&e, SpanError::Cluster { cluster, .. } if cluster == "eu"),
                "{e}"
            );
            assert!(e.to_string().starts_with("cluster \"eu\": "), "{e}");
        }
        other => panic!("expected a cluster error naming eu, got {other:?}"),
    }
    assert_eq!(
        holder_in(member(&members, "asia"), &lease).await,
        None,
        "asia given back"
    );
    assert_eq!(
        holder_in(member(&members, "us"), &lease).await,
        None,
        "us never reached"
    );

    // us down during renew: the renewal fails naming us; the others were still renewed.
    let up: Vec<Member> = members.iter().filter(|m| m.name != "eu").cloned().collect();
    let lease = unique("renew");
    let s = acquire_span(&up, &req(&lease, "alice", 60), &cancel)
        .await
        .expect("acquire on asia and us");
    let us_box = boxes.remove(0);
    drop(us_box);
    match renew_span(&up, &s).await {
        Err(SpanError::Cluster { cluster, .. }) => assert_eq!(cluster, "us"),
        other => panic!("expected a cluster error naming us, got {other:?}"),
    }
    let asia = member(&members, "asia");
    let now = asia
        .cluster
        .read("default", &lease)
        .await
        .expect("read")
        .expect("lease");
    assert!(now.renewed_at >= s.leases[0].1.renewed_at);
}

/// Expiry is judged on the server's clock: a sandbox whose clock runs an hour ahead sees a Lease
/// that this machine's clock calls live (renewed now for 10 minutes) as long expired, and one an
/// hour behind sees a Lease that this machine's clock calls expired (renewed 2 minutes ago for
/// 60 s) as live for about another hour.
#[tokio::test]
async fn expiry_is_judged_on_the_servers_clock() {
    let cancel = CancellationToken::new();
    for (offset, ago, duration, expect_taken) in [("3600", 0, 600, true), ("-3600", 120, 60, false)]
    {
        let Some(sb) = sandbox_with(&["--clock-offset-seconds", offset]) else {
            return;
        };
        let c = sb.cluster().await;
        let lease = unique("clock");
        // A Lease written with this machine's clock.
        let renewed = Timestamp::now()
            .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(ago))
            .unwrap();
        let api: Api<Lease> = Api::namespaced(c.client().clone(), "default");
        let mut l = Lease::default();
        l.metadata.name = Some(lease.clone());
        l.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some("ghost".into()),
            lease_duration_seconds: Some(duration),
            renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                renewed,
            )),
            lease_transitions: Some(4),
            ..Default::default()
        });
        api.create(&PostParams::default(), &l)
            .await
            .expect("create");
        let members = vec![Member {
            name: "x".into(),
            cluster: c.clone(),
        }];
        let r = acquire_span(&members, &req(&lease, "me", 60), &cancel).await;
        if expect_taken {
            // Live for 10 more minutes by our clock; lapsed 50 minutes ago by the server's.
            let s = r.expect("taken over");
            assert_eq!(s.fencing_token().to_string(), "x=5");
            // renewTime written from the server's clock, an hour ahead of ours.
            let written = s.leases[0].1.renewed_at.expect("renewed");
            assert!(
                written
                    > Timestamp::now()
                        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(3000))
                        .unwrap(),
                "{written}"
            );
        } else {
            // Lapsed a minute ago by our clock; by the server's, renewed 58 minutes in its
            // future, so about an hour remains.
            match r {
                Err(SpanError::Held {
                    holder,
                    retry_after,
                    ..
                }) => {
                    assert_eq!(holder, "ghost");
                    assert!(
                        retry_after >= Duration::from_secs(55 * 60),
                        "{retry_after:?}"
                    );
                }
                other => panic!("expected Held by ghost on the server's clock, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn requests_that_cannot_work_are_refused() {
    let Some((_boxes, members)) = three().await else {
        return;
    };
    let cancel = CancellationToken::new();
    assert!(matches!(
        acquire_span(&[], &req("x", "a", 60), &cancel).await,
        Err(SpanError::Invalid(_))
    ));
    let twice = vec![members[0].clone(), members[0].clone()];
    match acquire_span(&twice, &req("x", "a", 60), &cancel).await {
        Err(SpanError::Invalid(m)) => assert!(m.contains("listed twice"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        acquire_span(&members, &req("x", "a", 0), &cancel).await,
        Err(SpanError::Invalid(_))
    ));
}

/// The same scenarios against three real kube-apiservers (`scripts/kube-real`), whose
/// resourceVersion conflicts and `Date` headers are the ones that matter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn against_three_real_kube_apiservers() {
    use acceptance_tests::servers::KubeServer;
    if !KubeServer::real_available() {
        eprintln!("real kube-apiserver not built (scripts/kube-real build): skipped");
        return;
    }
    let servers: Vec<KubeServer> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(KubeServer::real)).collect();
        hs.into_iter()
            .map(|h| h.join().expect("start real server"))
            .collect()
    });
    let mut members = Vec::new();
    for (s, n) in servers.iter().zip(NAMES) {
        let c = connect(&ConnectionConfig {
            kubeconfig_paths: vec![s.kubeconfig.clone()],
            ..Default::default()
        })
        .await
        .expect("connect");
        members.push(Member {
            name: n.into(),
            cluster: c,
        });
    }
    contenders(members.clone()).await;
    turns(members.clone()).await;
    lapse(&members).await;
}
