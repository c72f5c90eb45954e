//! The bundled model through the full path is blind to how a CT is stored: the same world content
//! with its first axis reversed, or with two axes swapped, gives the same labels in the world
//! (the failure mode of tools that feed arrays without canonicalising them).

mod common;

use common::{root, runtime};

use mrt_core::{Grid, Volume};
use mrt_io::nifti_io::read_nifti;
use mrt_phantom::{write_phantom, Format, Options};
use mrt_segment::{Device, Segmenter};

/// Same voxels, first axis stored in reverse order.
fn reversed_i(v: &Volume<f32>) -> Volume<f32> {
    let g = v.grid();
    let [nx, ny, nz] = g.dims;
    let mut dir = g.direction;
    for row in dir.iter_mut() {
        row[0] = -row[0];
    }
    let origin = g.index_to_world([(nx - 1) as f64, 0.0, 0.0]);
    let grid = Grid::new(g.dims, g.spacing_mm, origin, dir).expect("grid");
    let mut data = Vec::with_capacity(v.data().len());
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                data.push(*v.at(nx - 1 - i, j, k));
            }
        }
    }
    Volume::new(grid, data).expect("volume")
}

/// Same voxels, first and second axes swapped.
fn swapped_ij(v: &Volume<f32>) -> Volume<f32> {
    let g = v.grid();
    let [nx, ny, nz] = g.dims;
    let mut dir = g.direction;
    for row in dir.iter_mut() {
        row.swap(0, 1);
    }
    let s = g.spacing_mm;
    let grid = Grid::new([ny, nx, nz], [s[1], s[0], s[2]], g.origin_mm, dir).expect("grid");
    let mut data = Vec::with_capacity(v.data().len());
    for k in 0..nz {
        for i in 0..nx {
            for j in 0..ny {
                data.push(*v.at(i, j, k));
            }
        }
    }
    Volume::new(grid, data).expect("volume")
}

fn agreement(a: &Volume<u8>, b: &Volume<u8>, label: u8) -> f64 {
    // b's labels at a's voxel centres (nearest), through world coordinates.
    let map = b
        .grid()
        .world_to_index_map()
        .compose(&a.grid().index_to_world_map());
    let [nx, ny, nz] = a.grid().dims;
    let (mut both, mut na, mut nb) = (0usize, 0usize, 0usize);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let x = *a.at(i, j, k) == label;
                let y = mrt_core::resample::sample_nearest(
                    b,
                    map.apply([i as f64, j as f64, k as f64]),
                ) == Some(label);
                both += usize::from(x && y);
                na += usize::from(x);
                nb += usize::from(y);
            }
        }
    }
    if na + nb == 0 {
        1.0
    } else {
        2.0 * both as f64 / (na + nb) as f64
    }
}

#[test]
fn flipped_and_transposed_storage_give_the_same_labels() {
    let runtime = runtime();
    let seg = Segmenter::load(&root().join("models/ct-organs"), Device::Cpu, &runtime)
        .expect("bundled model loads");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = Options::new(9201);
    o.timepoints_h = vec![24.0];
    let truth = write_phantom(dir.path(), o, Format::Nifti).expect("phantom");
    let ct = read_nifti(&dir.path().join(&truth.timepoints[0].ct))
        .expect("ct")
        .volume;
    let base = seg.segment(&ct).expect("segments").labels;
    let organs_found: Vec<u8> = (1..=4u8).filter(|l| base.data().contains(l)).collect();
    assert!(
        !organs_found.is_empty(),
        "the model finds at least one organ"
    );
    for (what, variant) in [
        ("reversed first axis", reversed_i(&ct)),
        ("swapped axes", swapped_ij(&ct)),
    ] {
        let labels = seg.segment(&variant).expect("segments").labels;
        for &l in &organs_found {
            let d = agreement(&base, &labels, l);
            println!("{what}: label {l} agreement {d:.4}");
            assert!(d > 0.99, "{what}: label {l} agreement {d}");
        }
    }
}
