//! Throughput of the distributed services on this machine: N concurrent `small` phantom studies
//! (default 10) through the local cluster with one, then two replicas of each worker. Reports
//! studies per hour, and per stage the service time (span duration) and the queue wait (from the
//! end of the previous stage's span to the start of this one), both read from the traces the
//! services export to a collector run here.
//!
//!   cargo bench -p mrtdose-services --bench throughput [-- --studies 10 --replicas 1,2]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{mrtdose, s, start_collector, use_bundled_model, Cluster, SpanSeen};

const STAGES: [&str; 5] = ["register", "segment", "quantify", "dose", "report"];

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Per stage: (service times, queue waits) in seconds.
fn stage_times(spans: &[SpanSeen]) -> BTreeMap<&'static str, (Vec<f64>, Vec<f64>)> {
    let mut by_trace: BTreeMap<&str, Vec<&SpanSeen>> = BTreeMap::new();
    for sp in spans {
        by_trace.entry(sp.trace_id.as_str()).or_default().push(sp);
    }
    let mut out: BTreeMap<&'static str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for spans in by_trace.values() {
        let find = |suffix: &str| {
            spans
                .iter()
                .filter(|sp| sp.name.ends_with(suffix))
                .max_by_key(|sp| sp.end_ns)
                .copied()
        };
        let mut previous = find("SubmitStudy");
        for stage in STAGES {
            let Some(sp) = find(&format!(" {stage}")) else {
                break;
            };
            let entry = out.entry(stage).or_default();
            entry
                .0
                .push((sp.end_ns.saturating_sub(sp.start_ns)) as f64 * 1e-9);
            if let Some(p) = previous {
                entry
                    .1
                    .push((sp.start_ns as f64 - p.end_ns as f64).max(0.0) * 1e-9);
            }
            previous = Some(sp);
        }
    }
    out
}

fn main() {
    use_bundled_model();
    let n: usize = arg("--studies", "10").parse().expect("--studies N");
    let replicas: Vec<usize> = arg("--replicas", "1,2")
        .split(',')
        .map(|r| r.parse().expect("--replicas 1,2"))
        .collect();
    let work = tempfile::tempdir().expect("tempdir");
    let studies: Vec<_> = (0..n as u64)
        .map(|i| {
            let dir = work.path().join(format!("study-{i}"));
            mrtdose(&[
                "phantom",
                "--seed",
                &(9700 + i).to_string(),
                "--misalign-mm",
                "10",
                "--out",
                &s(&dir),
            ]);
            dir
        })
        .collect();
    println!(
        "{n} concurrent small studies (4 time points each), seeds 9700-{}",
        9700 + n - 1
    );
    for r in replicas {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let (otlp, collector) = start_collector(&rt);
        let cluster = Cluster::up(&work.path().join(format!("cluster-{r}")), r, otlp);
        let started = Instant::now();
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = studies
                .iter()
                .map(|st| scope.spawn(|| cluster.submit(st)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("submit"))
                .collect()
        });
        for id in &ids {
            while !cluster.finished(id) {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        let wall = started.elapsed().as_secs_f64();
        drop(cluster);
        let spans = collector.spans.lock().expect("lock").clone();
        println!(
            "\n{r} replica(s) of each worker: {n} studies in {wall:.0} s = {:.1} studies/hour",
            n as f64 / wall * 3600.0
        );
        println!("stage      service s (median / p90)   queue wait s (median / p90)");
        let mut times = stage_times(&spans);
        for stage in STAGES {
            let Some((service, wait)) = times.get_mut(stage) else {
                continue;
            };
            println!(
                "{stage:<9} {:>8.1} / {:>6.1}            {:>8.1} / {:>6.1}",
                quantile(service, 0.5),
                quantile(service, 0.9),
                quantile(wait, 0.5),
                quantile(wait, 0.9)
            );
        }
    }
}
