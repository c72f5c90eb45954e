//! End-to-end test of the distributed system (issue 8): `scripts/local-cluster.sh` brings up
//! SeaweedFS (if needed) and the five services against the local RabbitMQ; three phantom studies
//! are submitted concurrently through the public gRPC API; the segmentation worker is killed
//! (SIGKILL) while it holds a study and then restarted. Asserts that
//!
//! (a) every report (and dose and label map) equals, byte for byte, what `mrtdose run` writes for
//!     the same files;
//! (b) each study is one OpenTelemetry trace holding spans of all five services, as received by
//!     the OTLP/HTTP collector this test runs itself, and metrics were exported;
//! (c) the crash loses nothing: every study completes, and the study the worker held is
//!     redelivered and finished by its restarted replica.
//!
//! Needs RabbitMQ on 127.0.0.1:5672, SeaweedFS's binary (scripts/test-data.sh) and the ONNX
//! Runtime library (.ort/lib); `scripts/test-all.sh` provides all three.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{mrtdose, s, start_collector, use_bundled_model, Cluster};

const SERVICES: [&str; 5] = [
    "mrtdose-ingest",
    "mrtdose-registration",
    "mrtdose-segmentation",
    "mrtdose-quantification",
    "mrtdose-dosimetry",
];

fn same_bytes(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

#[test]
fn three_concurrent_studies_survive_a_worker_crash_and_match_the_embedded_run() {
    use_bundled_model();
    let work = tempfile::tempdir().expect("tempdir");

    // Three small phantom studies, and what `mrtdose run` makes of each.
    let mut studies = Vec::new();
    for seed in [9601u64, 9602, 9603] {
        let study = work.path().join(format!("study-{seed}"));
        let embedded = work.path().join(format!("embedded-{seed}"));
        mrtdose(&[
            "phantom",
            "--seed",
            &seed.to_string(),
            "--misalign-mm",
            "10",
            "--out",
            &s(&study),
        ]);
        mrtdose(&["run", &s(&study), "--out", &s(&embedded), "--quiet"]);
        studies.push((study, embedded));
    }

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (otlp, collector) = start_collector(&rt);
    let cluster = Cluster::up(&work.path().join("cluster"), 1, otlp);

    // Submit the three at once through the CLI's client.
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = studies
            .iter()
            .map(|(study, _)| scope.spawn(|| cluster.submit(study)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("submit thread"))
            .collect()
    });
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        3,
        "three distinct study ids: {ids:?}"
    );

    // (c) Crash the segmentation worker while it holds a study, then bring it back.
    let deadline = Instant::now() + Duration::from_secs(300);
    while !cluster.log("segmentation").contains("stage started") {
        assert!(
            Instant::now() < deadline,
            "segmentation never started:\n{}",
            cluster.log("segmentation")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.script(&["kill", "segmentation"]);
    cluster.script(&["start", "segmentation"]);
    let deadline = Instant::now() + Duration::from_secs(900);
    for id in &ids {
        while !cluster.finished(id) {
            assert!(
                Instant::now() < deadline,
                "study {id} did not finish:\n{}\n{}",
                cluster.status(id),
                cluster.log("segmentation")
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let log = cluster.log("segmentation");
    assert!(
        log.contains("redelivered=true"),
        "the killed worker's study was not redelivered:\n{log}"
    );

    // (a) Byte-identical to `mrtdose run`.
    let mut matched = BTreeSet::new();
    for id in &ids {
        let got = work.path().join(format!("got-{id}"));
        mrtdose(&[
            "report",
            id,
            "--out",
            &s(&got),
            "--endpoint",
            &cluster.endpoint,
        ]);
        let (study, embedded) = studies
            .iter()
            .find(|(_, e)| same_bytes(&e.join("report.json"), &got.join("report.json")))
            .unwrap_or_else(|| {
                let r = std::fs::read_to_string(got.join("report.json")).unwrap_or_default();
                panic!(
                    "study {id}: no embedded report.json is identical to the distributed one:\n{r}"
                )
            });
        for f in [
            "report.html",
            "dose_Gy.nii.gz",
            "labels_tp1.nii.gz",
            "labels_tp4.nii.gz",
        ] {
            assert!(
                same_bytes(&got.join(f), &embedded.join(f)),
                "study {id}: {f} differs from mrtdose run's"
            );
        }
        matched.insert(study.clone());
    }
    assert_eq!(
        matched.len(),
        3,
        "each distributed report matches a different study"
    );

    // (b) One trace per study, with spans of all five services (SIGTERM flushes the exporters).
    drop(cluster);
    let spans = collector.spans.lock().expect("lock").clone();
    for id in &ids {
        let traces: BTreeSet<&str> = spans
            .iter()
            .filter(|sp| sp.study_id.as_deref() == Some(id))
            .map(|sp| sp.trace_id.as_str())
            .collect();
        assert_eq!(
            traces.len(),
            1,
            "study {id}: its spans are in {} traces",
            traces.len()
        );
        let trace = traces.into_iter().next().expect("one trace");
        let services: BTreeSet<&str> = spans
            .iter()
            .filter(|sp| sp.trace_id == trace)
            .map(|sp| sp.service.as_str())
            .collect();
        for want in SERVICES {
            assert!(
                services.contains(want),
                "study {id}: trace {trace} has no span of {want}: {services:?}"
            );
        }
    }
    assert!(
        *collector.metric_posts.lock().expect("lock") > 0,
        "no metrics were exported"
    );
}
