//! What the node's integration tests share: a node's config in a test dir, and waiting for a
//! validator's decision on a round.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use hallmark_node::config::NodeConfig;
use hallmark_node::messages::RoundResult;
use hallmark_node::NodeClient;

/// A node called `name` keeping its data in `dir/name`, every other setting its default but
/// one: validators registered here vote at once (`ledger.stake_epoch_secs = 0`), since these
/// tests start their validators after the ledger. The activation delay has its own test.
pub fn cfg(dir: &Path, name: &str) -> NodeConfig {
    let mut c = NodeConfig {
        name: name.into(),
        data_dir: dir.join(name),
        ..NodeConfig::default()
    };
    c.ledger.stake_epoch_secs = 0;
    on_test_backend(&mut c);
    c
}

/// With `HALLMARK_TEST_NODE_BACKEND=postgres`, puts the node's store on the test PostgreSQL
/// server (`HALLMARK_TEST_DATABASE_URL`) in a schema of its own, named after its data dir so a
/// restarted node finds its tables again. `.ci/run` runs the node tests once this way.
pub fn on_test_backend(c: &mut NodeConfig) {
    if std::env::var("HALLMARK_TEST_NODE_BACKEND").as_deref() != Ok("postgres") {
        return;
    }
    let url = std::env::var("HALLMARK_TEST_DATABASE_URL")
        .expect("HALLMARK_TEST_NODE_BACKEND=postgres needs HALLMARK_TEST_DATABASE_URL");
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    c.data_dir.hash(&mut h);
    c.store = Some(url);
    c.store_schema = Some(format!("hmnode_{:016x}", h.finish()));
}

/// The validator at `url`'s result for `round`, waiting up to `patience` for it.
pub async fn wait_result(url: &str, round: &str, patience: Duration) -> RoundResult {
    let client = NodeClient::new(url);
    let start = Instant::now();
    loop {
        match client
            .get::<RoundResult>(&format!("/v1/rounds/{round}/result"))
            .await
        {
            Ok(r) => return r,
            Err(e) if e.status() == Some(404) && start.elapsed() < patience => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{round}: {e}"),
        }
    }
}
