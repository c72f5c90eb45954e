//! The stage worker against the real RabbitMQ (127.0.0.1:5672; `MRTDOSE_TEST_AMQP` overrides),
//! reached through a TCP proxy this test can cut: the worker reconnects after losing the broker,
//! then runs a delivered stage and records its outcome in the store. The stage fails on purpose
//! (the study has no ingest artifacts): a stage's own failure is an outcome, written as the
//! status marker and announced, not an error that loops through the retry queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mrt_pipeline::bus::{Outcome, StageEvent};
use mrt_pipeline::store::{key, Store};
use mrt_pipeline::{SiteConfig, Stage, StageContext};
use mrt_runtime::amqp::{AmqpBus, AmqpConfig};
use mrt_runtime::health::Readiness;
use mrt_runtime::worker::{run_worker, WorkerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Forwards 127.0.0.1:<port> to `upstream` until `cut` changes, then drops every connection.
async fn start_proxy(upstream: SocketAddr, cut: watch::Receiver<u64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut cut = cut.clone();
            cut.borrow_and_update();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    addr
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reconnects_and_records_a_failed_stage() {
    let broker =
        std::env::var("MRTDOSE_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".into());
    let (cut_tx, cut_rx) = watch::channel(0u64);
    let proxy = start_proxy(broker.parse().expect("broker address"), cut_rx).await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("mrtdose-test-worker-{}-{nanos}", std::process::id());
    let amqp = |addr: String| AmqpConfig {
        url: format!("amqp://guest:guest@{addr}/%2f"),
        prefix: prefix.clone(),
        retry_delay_ms: 200,
        max_attempts: 3,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::local(dir.path()).expect("store");
    let ctx = StageContext {
        config: SiteConfig::default(),
        segmenter: None,
        tick: Arc::new(|_| {}),
    };
    let ready = Readiness::default();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(run_worker(
        WorkerConfig {
            amqp: amqp(proxy.to_string()),
            stages: vec![Stage::Register],
            prefetch: 1,
            reconnect_delay: Duration::from_millis(300),
            service: "test-registration".into(),
        },
        store.clone(),
        ctx,
        ready.clone(),
        shutdown.clone(),
    ));
    wait_for("the first connection", Duration::from_secs(20), || {
        ready.get()
    })
    .await;

    // Cut the connection: the worker notices, waits, reconnects.
    cut_tx.send(1).expect("cut");
    wait_for("the worker to notice", Duration::from_secs(20), || {
        !ready.get()
    })
    .await;
    wait_for("the reconnection", Duration::from_secs(20), || ready.get()).await;

    // A delivery after the reconnection is run and its outcome recorded.
    let direct = AmqpBus::connect(amqp(broker.clone()))
        .await
        .expect("direct connection");
    let study = "s-no-such-study";
    direct
        .publish_event(&StageEvent {
            study_id: study.into(),
            stage: Stage::Ingest,
            outcome: Outcome::Done,
            traceparent: None,
        })
        .await
        .expect("published");
    let marker = key(study, "status", "register.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store.exists(&marker).await.expect("store") {
        assert!(
            Instant::now() < deadline,
            "no status marker for the register stage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = String::from_utf8_lossy(&store.get(&marker).await.expect("marker")).into_owned();
    assert!(text.contains("\"failed\""), "{text}");
    assert!(text.contains("register"), "{text}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .expect("the worker stops on shutdown")
        .expect("joins")
        .expect("no error");
    direct.delete_queues().await.expect("clean up");
}
