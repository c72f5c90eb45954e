//! A missing ONNX Runtime library gives an error that says how to get it (own process: the
//! runtime can be loaded only once per process).

use std::path::Path;

use mrt_segment::{Device, SegmentError, Segmenter};

#[test]
fn a_missing_runtime_library_says_what_to_do() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/hu-bands");
    assert!(model.exists(), "run scripts/test-data.sh first");
    let e = Segmenter::load(
        &model,
        Device::Auto,
        Path::new("/nowhere/libonnxruntime.so"),
    )
    .err()
    .expect("refused");
    assert!(matches!(e, SegmentError::RuntimeMissing { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("/nowhere/libonnxruntime.so") && text.contains("setup-ort.sh"),
        "{text}"
    );
}
