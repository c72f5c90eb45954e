//! The card's intensity refinement, through the bundled model and the full path, brings the labels
//! closer to a phantom's ground truth than the same network without it (checked against the
//! phantom's own truth labels, never against the segmenter's output).

mod common;

use common::{root, runtime};

use mrt_io::nifti_io::read_nifti;
use mrt_phantom::{write_phantom, Format, Options};
use mrt_segment::{Device, Segmenter};

/// Mean Dice over the four organs (labels 1-4; phantom label 5, liver tumour, is not liver).
fn mean_dice(labels: &[u8], truth: &[f32]) -> f64 {
    let mut sum = 0.0;
    for organ in 1..=4u8 {
        let (mut both, mut a, mut b) = (0usize, 0usize, 0usize);
        for (&l, &t) in labels.iter().zip(truth) {
            let x = l == organ;
            let y = t.round() as u8 == organ;
            both += usize::from(x && y);
            a += usize::from(x);
            b += usize::from(y);
        }
        sum += 2.0 * both as f64 / (a + b).max(1) as f64;
    }
    sum / 4.0
}

#[test]
fn the_refinement_moves_labels_toward_the_phantom_truth() {
    let runtime = runtime();
    let bundled = root().join("models/ct-organs");
    let card_text = std::fs::read_to_string(bundled.join("model-card.json")).expect("card");
    let mut card: serde_json::Value = serde_json::from_str(&card_text).expect("card JSON");
    assert!(
        card.get("intensity_refinement").is_some(),
        "the bundled card asks for the refinement"
    );
    // The same ONNX with the block taken out of its card.
    let plain = tempfile::tempdir().expect("tempdir");
    card.as_object_mut()
        .expect("card object")
        .remove("intensity_refinement");
    std::fs::write(
        plain.path().join("model-card.json"),
        serde_json::to_string_pretty(&card).expect("card"),
    )
    .expect("write card");
    std::fs::copy(bundled.join("model.onnx"), plain.path().join("model.onnx")).expect("copy");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = Options::new(9202);
    o.timepoints_h = vec![24.0];
    let truth = write_phantom(dir.path(), o, Format::Nifti).expect("phantom");
    let ct = read_nifti(&dir.path().join(&truth.timepoints[0].ct))
        .expect("ct")
        .volume;
    let truth_labels = read_nifti(&dir.path().join(&truth.timepoints[0].labels))
        .expect("truth labels")
        .volume;
    assert_eq!(truth_labels.grid().dims, ct.grid().dims);

    let mut scores = Vec::new();
    for model in [&bundled, &plain.path().to_path_buf()] {
        let seg = Segmenter::load(model, Device::Cpu, &runtime).expect("model loads");
        let labels = seg.segment(&ct).expect("segments").labels;
        scores.push(mean_dice(labels.data(), truth_labels.data()));
    }
    println!(
        "mean Dice with refinement {:.4}, without {:.4}",
        scores[0], scores[1]
    );
    assert!(
        scores[0] > scores[1] + 0.005,
        "refined {:.4} against plain {:.4}",
        scores[0],
        scores[1]
    );
}
