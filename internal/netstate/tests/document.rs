//! The network-state document in three API servers at once: concurrent writers lose no history,
//! fencing refuses a stale holder, copies edited by hand stop the write (and `repair_from`
//! mends them), newer schemas are refused and older ones migrated on write.
//!
//! Against three local sandboxes; with the real kube-apiserver built (`scripts/kube-real build`,
//! `TESTNET_KUBE_REAL` not `0`) the concurrency and hand-edit scenarios also run against three
//! real servers, whose resourceVersion conflicts are the ones that matter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use acceptance_tests::servers::KubeServer;
use cluster::{connect, ConnectionConfig, FencingToken, Member};
use netstate::*;
use serde_json::{json, Map, Value};

const NAMES: [&str; 3] = ["us", "eu", "asia"];

struct Three {
    _servers: Vec<KubeServer>,
    members: Vec<Member>,
}

async fn members_of(servers: &[KubeServer]) -> Vec<Member> {
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
    members
}

async fn sandboxes() -> Three {
    let servers: Vec<KubeServer> = (0..3).map(|_| KubeServer::sandbox()).collect();
    let members = members_of(&servers).await;
    Three {
        _servers: servers,
        members,
    }
}

/// Three real kube-apiservers, when built.
async fn reals() -> Option<Three> {
    if !KubeServer::real_available() {
        eprintln!("real kube-apiserver not built (scripts/kube-real build): sandboxes only");
        return None;
    }
    let servers: Vec<KubeServer> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(KubeServer::real)).collect();
        hs.into_iter()
            .map(|h| h.join().expect("start real server"))
            .collect()
    });
    let members = members_of(&servers).await;
    Some(Three {
        _servers: servers,
        members,
    })
}

fn comps(v: Value) -> BTreeMap<String, Map<String, Value>> {
    serde_json::from_value(v).expect("components")
}

fn request(network: &str, holder: &str, token: Option<&str>, components: Value) -> WriteRequest {
    WriteRequest {
        network: network.into(),
        namespace: "default".into(),
        components: comps(components),
        fencing_token: token.map(|t| t.parse::<FencingToken>().expect("token")),
        holder: holder.into(),
        tfc_run_id: None,
        history_limit: DEFAULT_HISTORY_LIMIT,
        repair_from: None,
        settle_timeout: Duration::from_secs(10),
    }
}

/// `holder` writes `component` at `version` under `token`: the write most scenarios here make.
async fn write_version(
    members: &[Member],
    network: &str,
    holder: &str,
    token: &str,
    component: &str,
    version: &str,
) -> Result<Document, StateError> {
    let components = json!({ component: { "version": version } });
    write(members, &request(network, holder, Some(token), components)).await
}

fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn all_equal(members: &[Member], network: &str) -> Document {
    let copies = read_all(members, "default", network)
        .await
        .expect("read all");
    assert_eq!(copies.len(), 3);
    assert_eq!(compare(&copies), None, "copies agree");
    copies[0].1.clone().expect("a copy")
}

/// Two writers, each with ten applies of its own component, at the same time: every one of the
/// twenty applies is in the history of every copy.
async fn concurrent_writers_lose_no_history(t: &Three) {
    let network = unique("concurrent");
    let members = Arc::new(t.members.clone());
    let mut tasks = Vec::new();
    for who in ["alice", "bob"] {
        let (members, network) = (members.clone(), network.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let mut r = request(&network, who, None, json!({}));
                // Each writer sets its own component; the other's is kept by re-reading.
                let current = read(&members[0], "default", &network).await.expect("read");
                let mut c = current.map(|d| d.components).unwrap_or_default();
                c.insert(
                    who.into(),
                    json!({"version": format!("v{i}")})
                        .as_object()
                        .unwrap()
                        .clone(),
                );
                r.components = c;
                write(&members, &r).await.expect("write");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let doc = all_equal(&members, &network).await;
    assert_eq!(doc.history.len(), 20, "no apply lost: {:#?}", doc.history);
    for who in ["alice", "bob"] {
        assert_eq!(
            doc.history.iter().filter(|e| e.holder == who).count(),
            10,
            "{who}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_no_history_entry() {
    concurrent_writers_lose_no_history(&sandboxes().await).await;
    if let Some(real) = reals().await {
        concurrent_writers_lose_no_history(&real).await;
        copies_edited_by_hand(&real).await;
    }
}

#[tokio::test]
async fn stale_holder_is_refused_by_fencing() {
    let t = sandboxes().await;
    let network = unique("fence");
    write_version(&t.members, &network, "alice", "asia=1,eu=1,us=1", "a", "v1")
        .await
        .expect("alice writes");
    // Bob took the lock after alice's lapsed in eu: his token is newer there.
    write_version(&t.members, &network, "bob", "asia=1,eu=2,us=1", "a", "v2")
        .await
        .expect("bob writes");
    // Alice, still believing she holds the lock, is refused and told about bob.
    let e = write_version(&t.members, &network, "alice", "asia=1,eu=1,us=1", "a", "v3")
        .await
        .expect_err("stale write refused");
    let text = e.to_string();
    assert!(
        matches!(&e, StateError::Fenced { cluster, holder, .. } if cluster == "eu" && holder == "bob"),
        "{text}"
    );
    assert!(text.contains("last written by \"bob\""), "{text}");
    // A write with no token at all is refused once the document is fenced.
    assert!(matches!(
        write(&t.members, &request(&network, "carol", None, json!({}))).await,
        Err(StateError::Unfenced { .. })
    ));
    let doc = all_equal(&t.members, &network).await;
    assert_eq!(
        doc.components["a"]["version"], "v2",
        "the refused write changed nothing"
    );
    assert_eq!(doc.fencing_token.as_deref(), Some("asia=1,eu=2,us=1"));
    assert_eq!(doc.history.len(), 2);
    assert_eq!(
        doc.history[1].changes,
        vec!["~ a.version: \"v1\" -> \"v2\""]
    );
}

/// Edits `network`'s copy in `member` by hand (as `kubectl edit` would).
async fn edit_by_hand(member: &Member, network: &str, f: impl FnOnce(&mut Value)) {
    let (stored, _) = member
        .cluster
        .get_config_map("default", &config_map_name(network))
        .await
        .expect("get");
    let stored = stored.expect("a copy");
    let mut v: Value = serde_json::from_str(&stored.data[DATA_KEY]).expect("json");
    f(&mut v);
    member
        .cluster
        .put_config_map(
            "default",
            &config_map_name(network),
            BTreeMap::new(),
            BTreeMap::from([(DATA_KEY.to_string(), v.to_string())]),
            Some(&stored.resource_version),
        )
        .await
        .expect("edit");
}

async fn copies_edited_by_hand(t: &Three) {
    let network = unique("edited");
    let eu = t.members.iter().find(|m| m.name == "eu").expect("eu");
    write_version(&t.members, &network, "alice", "1", "node", "v1")
        .await
        .expect("first write");
    edit_by_hand(eu, &network, |v| {
        v["components"]["node"]["version"] = json!("v9")
    })
    .await;
    let mut r = request(
        &network,
        "alice",
        Some("1"),
        json!({"node": {"version": "v2"}}),
    );
    r.settle_timeout = Duration::ZERO;
    let e = write(&t.members, &r).await.expect_err("copies differ");
    let text = e.to_string();
    assert!(text.contains("differ between clusters"), "{text}");
    assert!(
        text.contains("node is {\"version\":\"v9\"} there but {\"version\":\"v1\"}"),
        "{text}"
    );
    assert!(text.contains("changed outside Terraform"), "{text}");
    assert!(text.contains("repair_from"), "{text}");
    // Nothing was written anywhere.
    let us = t.members.iter().find(|m| m.name == "us").expect("us");
    let still = read(us, "default", &network)
        .await
        .expect("read")
        .expect("copy");
    assert_eq!(still.components["node"]["version"], "v1");

    // repair_from = us: us's copy wins, the change applies on top, every copy agrees again.
    r.repair_from = Some("us".into());
    write(&t.members, &r).await.expect("repair");
    let doc = all_equal(&t.members, &network).await;
    assert_eq!(doc.components["node"]["version"], "v2");
    assert_eq!(doc.history.len(), 2);
    assert_eq!(
        doc.history[1].changes,
        vec!["~ node.version: \"v1\" -> \"v2\""]
    );

    // A copy missing from one cluster is named too; repair_from a cluster without one refused.
    eu.cluster
        .delete_config_map("default", &config_map_name(&network))
        .await
        .expect("delete");
    r.repair_from = None;
    let e = write(&t.members, &r).await.expect_err("missing copy");
    assert!(e.to_string().contains("cluster \"eu\" has no copy"), "{e}");
    r.repair_from = Some("eu".into());
    assert!(matches!(
        write(&t.members, &r).await,
        Err(StateError::BadRepair { .. })
    ));
    r.repair_from = Some("mars".into());
    assert!(matches!(
        write(&t.members, &r).await,
        Err(StateError::BadRepair { .. })
    ));
}

#[tokio::test]
async fn copies_differing_by_hand_stop_the_write_until_repaired() {
    copies_edited_by_hand(&sandboxes().await).await;
}

/// A copy only behind (its history a prefix of another's, as after an interrupted write) is
/// named as behind, with what it lacks.
#[tokio::test]
async fn a_copy_left_behind_is_named() {
    let t = sandboxes().await;
    let network = unique("behind");
    let first = request(
        &network,
        "alice",
        Some("1"),
        json!({"node": {"version": "v1"}}),
    );
    write(&t.members, &first).await.expect("write 1");
    let asia_only: Vec<Member> = t
        .members
        .iter()
        .filter(|m| m.name == "asia")
        .cloned()
        .collect();
    // A write that reached asia only (asia is first in name order).
    let mut second = request(
        &network,
        "bob",
        Some("1"),
        json!({"node": {"version": "v2"}}),
    );
    write(&asia_only, &second)
        .await
        .expect("write to asia only");
    second.settle_timeout = Duration::from_millis(300);
    let e = write(&t.members, &second).await.expect_err("behind");
    let text = e.to_string();
    assert!(
        text.contains("cluster \"eu\" is behind cluster \"asia\" by 1 apply(ies)"),
        "{text}"
    );
    assert!(
        text.contains("cluster \"us\" is behind cluster \"asia\""),
        "{text}"
    );
    second.repair_from = Some("asia".into());
    write(&t.members, &second).await.expect("repair from asia");
    assert_eq!(all_equal(&t.members, &network).await.history.len(), 3);
}

#[tokio::test]
async fn newer_schema_is_refused_and_older_migrated() {
    let t = sandboxes().await;
    let us = t.members.iter().find(|m| m.name == "us").expect("us");
    let only_us = vec![us.clone()];

    // A document of schema 4 (a newer provider): refused, left as it is.
    let network = unique("newer");
    let newer = json!({"schema_version": 4, "network": network, "shiny": true}).to_string();
    us.cluster
        .put_config_map(
            "default",
            &config_map_name(&network),
            BTreeMap::new(),
            BTreeMap::from([(DATA_KEY.to_string(), newer.clone())]),
            None,
        )
        .await
        .expect("seed");
    let e = write(&only_us, &request(&network, "alice", Some("1"), json!({})))
        .await
        .expect_err("newer");
    assert!(
        matches!(
            &e,
            StateError::Unreadable {
                source: MigrateError::Newer { found: 4, .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("schema version 4, newer than the 3"),
        "{e}"
    );
    let (kept, _) = us
        .cluster
        .get_config_map("default", &config_map_name(&network))
        .await
        .expect("get");
    assert_eq!(
        kept.expect("still there").data[DATA_KEY],
        newer,
        "never rewritten"
    );

    // A schema-1 document is migrated on write, its history kept.
    let network = unique("older");
    let v1 = json!({"version": 1, "network": network, "components": {"node": "v1"},
        "history": [{"time": "2025-01-01T00:00:00Z", "user": "ann", "command": "deploy node"}]});
    us.cluster
        .put_config_map(
            "default",
            &config_map_name(&network),
            BTreeMap::new(),
            BTreeMap::from([(DATA_KEY.to_string(), v1.to_string())]),
            None,
        )
        .await
        .expect("seed");
    let doc = write_version(&only_us, &network, "alice", "1", "node", "v2")
        .await
        .expect("migrating write");
    assert_eq!(doc.schema_version, CURRENT_SCHEMA);
    assert_eq!(doc.history.len(), 2);
    assert_eq!(doc.history[0].holder, "ann");
    assert_eq!(
        doc.history[1].changes,
        vec!["~ node.version: \"v1\" -> \"v2\""]
    );
    let back = read(us, "default", &network)
        .await
        .expect("read")
        .expect("doc");
    assert_eq!(back, doc);
}

/// The server agrees about the limit we check before writing: a ConfigMap over 1 MiB is refused
/// with 422 FieldValueTooLong (the sandbox as the real server does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_size_limit_is_the_servers() {
    size_limit(&sandboxes().await).await;
    if let Some(real) = reals().await {
        size_limit(&real).await;
    }
}

async fn size_limit(t: &Three) {
    let big = "x".repeat(cluster::CONFIG_MAP_MAX_BYTES + 1);
    let e = t.members[0]
        .cluster
        .put_config_map(
            "default",
            "too-big",
            BTreeMap::new(),
            BTreeMap::from([("k".to_string(), big)]),
            None,
        )
        .await
        .expect_err("too large");
    match e {
        cluster::ClusterError::Invalid { causes, .. } => {
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert_eq!(causes[0].reason, "FieldValueTooLong");
        }
        other => panic!("expected 422 Invalid, got {other}"),
    }
    let fits = "x".repeat(cluster::CONFIG_MAP_MAX_BYTES);
    t.members[0]
        .cluster
        .put_config_map(
            "default",
            "just-fits",
            BTreeMap::new(),
            BTreeMap::from([("k".to_string(), fits)]),
            None,
        )
        .await
        .expect("exactly 1 MiB fits");
}

/// The whole story with the real lock: alice holds the lock over three clusters and writes; her
/// Leases lapse (aged by hand, as if her run hung); bob takes the lock (his token grows in every
/// cluster) and writes; alice's late write, with the token she still has, is refused naming bob.
#[tokio::test]
async fn stale_lock_holder_is_fenced_out_by_the_new_holder() {
    use cluster::{acquire_span, CancellationToken, LockRequest};
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Api, PostParams};

    let t = sandboxes().await;
    let network = unique("story");
    let cancel = CancellationToken::new();
    let alice = acquire_span(
        &t.members,
        &LockRequest::new("default", &network, "alice", 60),
        &cancel,
    )
    .await
    .expect("alice locks");
    let alice_token = alice.fencing_token().to_string();
    write_version(&t.members, &network, "alice", &alice_token, "node", "v1")
        .await
        .expect("alice writes under the lock");

    for m in &t.members {
        let api: Api<Lease> = Api::namespaced(m.cluster.client().clone(), "default");
        let mut l = api.get(&network).await.expect("lease");
        let spec = l.spec.as_mut().expect("spec");
        let t0 = spec.renew_time.clone().expect("renewed").0;
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            t0.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(3600))
                .expect("time"),
        ));
        api.replace(&network, &PostParams::default(), &l)
            .await
            .expect("age lease");
    }
    let bob = acquire_span(
        &t.members,
        &LockRequest::new("default", &network, "bob", 60),
        &cancel,
    )
    .await
    .expect("bob takes the lapsed lock");
    let bob_token = bob.fencing_token().to_string();
    assert_eq!(bob_token, "asia=1,eu=1,us=1");
    write_version(&t.members, &network, "bob", &bob_token, "node", "v2")
        .await
        .expect("bob writes");

    let e = write_version(
        &t.members,
        &network,
        "alice",
        &alice_token,
        "node",
        "v1-late",
    )
    .await
    .expect_err("alice's late write is refused");
    assert!(
        matches!(&e, StateError::Fenced { holder, .. } if holder == "bob"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("older than the document's asia=1,eu=1,us=1"),
        "{e}"
    );
    assert_eq!(
        all_equal(&t.members, &network).await.components["node"]["version"],
        "v2"
    );
}
