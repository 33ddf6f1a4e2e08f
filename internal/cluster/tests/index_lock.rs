//! The snapshot index lock against the local API server: holders take turns, release clears the
//! holder, and a lease taken over behind the holder's back is reported lost by its next renewal.

mod common;

use std::time::{Duration, Instant};

use cluster::*;
use common::{sandbox, unique};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};

#[tokio::test]
async fn holders_take_turns_and_release_clears_the_holder() {
    let Some(sb) = sandbox() else { return };
    let c = sb.cluster().await;
    let name = unique("index");
    let cancel = CancellationToken::new();
    let a = c
        .hold("default", &name, 30, Duration::ZERO, &cancel)
        .await
        .expect("first holder");
    a.check().expect("held");
    match c.hold("default", &name, 30, Duration::ZERO, &cancel).await {
        Err(LockError::Held { holder, .. }) => assert_eq!(Some(holder), a.state().holder),
        Err(e) => panic!("expected Held, got {e}"),
        Ok(_) => panic!("two holders at once"),
    }
    // A waiter gets it once the first lets go.
    let (c2, name2, cancel2) = (c.clone(), name.clone(), cancel.clone());
    let waiter = tokio::spawn(async move {
        c2.hold("default", &name2, 30, Duration::from_secs(60), &cancel2)
            .await
    });
    let first = a.state();
    a.release().await;
    let b = waiter.await.expect("task").expect("second holder");
    assert_ne!(
        b.state().holder,
        first.holder,
        "holders are unique per call"
    );
    assert_eq!(b.state().fencing_token, first.fencing_token + 1);
    b.release().await;
    let after = c
        .read("default", &name)
        .await
        .expect("read")
        .expect("lease");
    assert_eq!(after.holder, None);
}

#[tokio::test]
async fn a_lease_taken_over_is_reported_lost() {
    let Some(sb) = sandbox() else { return };
    let c = sb.cluster().await;
    let name = unique("index");
    let cancel = CancellationToken::new();
    // A 3 s lease is renewed every second.
    let held = c
        .hold("default", &name, 3, Duration::ZERO, &cancel)
        .await
        .expect("hold");
    let api: Api<Lease> = Api::namespaced(c.client().clone(), "default");
    let mut lease = api.get(&name).await.expect("get lease");
    let spec = lease.spec.as_mut().expect("spec");
    spec.holder_identity = Some("intruder".into());
    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    api.replace(&name, &PostParams::default(), &lease)
        .await
        .expect("take over");
    let deadline = Instant::now() + Duration::from_secs(20);
    let why = loop {
        if let Err(why) = held.check() {
            break why;
        }
        assert!(Instant::now() < deadline, "the takeover was never noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        why.contains("no longer ours") && why.contains("intruder"),
        "{why}"
    );
    // Releasing a lost lease leaves the new holder alone.
    held.release().await;
    let now = c
        .read("default", &name)
        .await
        .expect("read")
        .expect("lease");
    assert_eq!(now.holder.as_deref(), Some("intruder"));
}
