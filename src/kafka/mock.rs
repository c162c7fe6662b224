//! The two mock-cluster settings that rust-rdkafka's safe `MockCluster` API does not expose,
//! called through librdkafka's C API (the crate's other `unsafe` code: `message_status.rs`).
//!
//! - the advertised listener: the mock listens on a random loopback port and advertises it in
//!   Metadata and FindCoordinator responses; we put a forwarder on the fixed `--listen` address
//!   and make the mock advertise that instead, so every client connection goes through it;
//! - the initial rebalance delay (librdkafka's mock defaults to 3 s, like
//!   `group.initial.rebalance.delay.ms` on a real broker).
#![allow(unsafe_code)]

use std::ffi::CString;

use rdkafka::bindings as rdsys;
use rdkafka::client::{Client, ClientContext};

/// The mock cluster was not found on `client`: it was not created with `test.mock.num.brokers`.
#[derive(Debug, thiserror::Error)]
#[error("the client owns no mock cluster")]
pub struct NoMockCluster;

fn cluster<C: ClientContext>(
    client: &Client<C>,
) -> Result<*mut rdsys::rd_kafka_mock_cluster_t, NoMockCluster> {
    // SAFETY: native_ptr() is a live rd_kafka_t for as long as `client` is borrowed;
    // rd_kafka_handle_mock_cluster only reads it and returns NULL when there is no cluster.
    let cluster = unsafe { rdsys::rd_kafka_handle_mock_cluster(client.native_ptr()) };
    if cluster.is_null() {
        Err(NoMockCluster)
    } else {
        Ok(cluster)
    }
}

/// Makes mock broker `broker_id` advertise `host:port` to clients.
pub fn advertise<C: ClientContext>(
    client: &Client<C>,
    broker_id: i32,
    host: &str,
    port: u16,
) -> Result<(), NoMockCluster> {
    let cluster = cluster(client)?;
    // A host with an interior NUL cannot come from a parsed socket address or a resolved name.
    let host = CString::new(host).map_err(|_| NoMockCluster)?;
    // SAFETY: `cluster` belongs to `client`, which outlives this call; librdkafka copies `host`
    // into the broker under the cluster lock, so the CString may be freed afterwards.
    unsafe {
        rdsys::rd_kafka_mock_broker_set_host_port(
            cluster,
            broker_id,
            host.as_ptr(),
            i32::from(port),
        );
    }
    Ok(())
}

/// How long the mock waits for more members after the first one joins an empty group.
pub fn set_initial_rebalance_delay<C: ClientContext>(
    client: &Client<C>,
    delay_ms: i32,
) -> Result<(), NoMockCluster> {
    let cluster = cluster(client)?;
    // SAFETY: as in `advertise`; the call only stores an integer under the cluster lock.
    unsafe { rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, delay_ms) };
    Ok(())
}
