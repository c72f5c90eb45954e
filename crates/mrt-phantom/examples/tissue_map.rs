//! The phantom's tissue classes on its CT grid (first time point): one NIfTI of `Tissue::ALL`
//! indices beside the CT, for finding what a segmentation error lies in (stomach, muscle...) and
//! for the training's per-tissue intensity augmentation (models/train/build_cache.py).
//! Same options as `mrtdose phantom` (latest anatomy revision); the organ labels it implies equal
//! the phantom's truth labels (build_cache.py checks).
//! `cargo run --release -p mrt-phantom --example tissue_map -- SEED small|clinical OUT.nii.gz [--no-tumours]`
use mrt_core::volume::Volume;
use mrt_phantom::patient::{Options, Patient, Preset};
use mrt_phantom::simulate::Geometry;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tissue_map SEED small|clinical OUT.nii.gz [--no-tumours]";
    let no_tumours = match args.get(4).map(String::as_str) {
        None => false,
        Some("--no-tumours") => true,
        Some(_) => return Err(usage.into()),
    };
    if args.len() < 4 || args.len() > 5 {
        return Err(usage.into());
    }
    let seed: u64 = args[1].parse()?;
    let preset = match args[2].as_str() {
        "small" => Preset::Small,
        "clinical" => Preset::Clinical,
        other => return Err(format!("unknown preset {other}").into()),
    };
    let mut options = Options::new(seed);
    options.preset = preset;
    options.timepoints_h = vec![24.0];
    options.tumours = !no_tumours;
    let patient = Patient::sample(options);
    let geometry = Geometry::for_preset(preset);
    let grid = &geometry.ct;
    let to_body = patient.sessions[0]
        .body_to_world
        .inverse_affine()
        .compose(&grid.index_to_world_map());
    let [nx, ny, nz] = grid.dims;
    let mut out = Vec::with_capacity(grid.len());
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let b = to_body.apply([i as f64, j as f64, k as f64]);
                out.push(patient.anatomy.tissue_at(b).index() as u8);
            }
        }
    }
    let volume = Volume::new(grid.clone(), out)?;
    mrt_io::nifti_io::write_nifti(std::path::Path::new(&args[3]), &volume)?;
    Ok(())
}
