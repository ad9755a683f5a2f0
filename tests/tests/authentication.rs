//! Every refusal of the cluster's authentication and authorization against a real
//! `tessera-master` and real `tessera-agent`s on 127.0.0.1 (a `LocalCluster`, which makes its
//! own CA). The scenario itself is in `tessera_e2e::refusals`; the multi-host test runs it
//! again from a host of its own.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use tessera_e2e::refusals::{ClusterUnderTest, every_refusal};
use tessera_framework::LocalCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_the_right_certificate_are_refused_and_the_cluster_carries_on() {
    let cluster = LocalCluster::start(2, 2.0, 1024, &tessera_e2e::bin_dir())
        .await
        .expect("local cluster");
    let under_test = ClusterUnderTest {
        master: cluster.master_address().into(),
        credentials: cluster.credentials_dir(),
        owner: cluster.endpoint().credential,
        agents: vec!["agent-0".into(), "agent-1".into()],
    };
    // Owner and strangers share this host.
    every_refusal(&under_test, |_| {}).await;
}
