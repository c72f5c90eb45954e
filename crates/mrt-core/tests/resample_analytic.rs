//! Resampling checked against analytic volumes: a sphere and a linear ramp defined in world space.

use mrt_core::linalg::{self, rotation_xyz_deg, Vec3};
use mrt_core::{resample, Grid, Interpolation, Volume};

/// Fills a grid with `f(world position)`.
fn sample<T>(grid: &Grid, f: impl Fn(Vec3) -> T) -> Volume<T> {
    let [nx, ny, nz] = grid.dims;
    let mut data = Vec::with_capacity(grid.len());
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                data.push(f(grid.index_to_world([i as f64, j as f64, k as f64])));
            }
        }
    }
    Volume::new(grid.clone(), data).expect("sized from grid")
}

/// Mask-weighted centroid in world mm.
fn centroid(v: &Volume<u8>) -> Vec3 {
    let g = v.grid();
    let mut sum = [0.0; 3];
    let mut n = 0.0;
    for k in 0..g.dims[2] {
        for j in 0..g.dims[1] {
            for i in 0..g.dims[0] {
                if *v.at(i, j, k) > 0 {
                    sum = linalg::add(sum, g.index_to_world([i as f64, j as f64, k as f64]));
                    n += 1.0;
                }
            }
        }
    }
    linalg::scale(sum, 1.0 / n)
}

const CENTRE: Vec3 = [12.0, -30.0, 105.0];
const RADIUS_MM: f64 = 40.0;

fn fine_source() -> Grid {
    // Anisotropic, axis-aligned source: 1 × 1.5 × 2 mm.
    Grid::axis_aligned([160, 110, 90], [1.0, 1.5, 2.0], [-68.0, -112.0, 15.0]).expect("valid")
}

fn rotated_coarse_target() -> Grid {
    // Oblique, coarser, anisotropic target centred on the sphere.
    let dir = rotation_xyz_deg([17.0, -11.0, 29.0]);
    let spacing = [3.1, 2.7, 4.3];
    let dims = [40, 44, 30];
    let half = linalg::mat_vec(
        &dir,
        [
            spacing[0] * (dims[0] - 1) as f64 / 2.0,
            spacing[1] * (dims[1] - 1) as f64 / 2.0,
            spacing[2] * (dims[2] - 1) as f64 / 2.0,
        ],
    );
    Grid::new(dims, spacing, linalg::sub(CENTRE, half), dir).expect("valid")
}

#[test]
fn sphere_stays_centred_after_resampling_to_rotated_coarser_grid() {
    let inside = |p: Vec3| u8::from(linalg::norm(linalg::sub(p, CENTRE)) <= RADIUS_MM);
    let source = sample(&fine_source(), inside);
    let src_c = centroid(&source);
    assert!(
        linalg::norm(linalg::sub(src_c, CENTRE)) < 0.2,
        "source centroid {src_c:?}"
    );

    let target = rotated_coarse_target();
    let resampled = resample(&source, &target, Interpolation::Nearest, 0);
    let c = centroid(&resampled);
    let err = linalg::norm(linalg::sub(c, CENTRE));
    // Nearest-neighbour discretisation on 3-4 mm voxels: the centroid error is a fraction of a voxel.
    assert!(err < 0.6, "centroid moved by {err} mm: {c:?}");

    // Volume preserved to discretisation accuracy.
    let n = resampled.data().iter().filter(|&&v| v > 0).count() as f64;
    let vol = n * target.voxel_volume_mm3();
    let exact = 4.0 / 3.0 * std::f64::consts::PI * RADIUS_MM.powi(3);
    assert!((vol / exact - 1.0).abs() < 0.03, "volume {vol} vs {exact}");

    // Labels stay labels.
    assert!(resampled.data().iter().all(|&v| v <= 1));
}

#[test]
fn linear_ramp_is_reproduced_exactly_by_trilinear_interpolation() {
    // A function linear in world coordinates is linear in any grid's index, so trilinear
    // interpolation reproduces it to rounding error wherever the target lies inside the source.
    let ramp = |p: Vec3| 0.5 * p[0] - 1.25 * p[1] + 2.0 * p[2] + 7.0;
    let source = sample(&fine_source(), ramp);
    let target = rotated_coarse_target();
    let resampled = resample(&source, &target, Interpolation::Linear, f64::NAN);
    let expected = sample(&target, ramp);
    let src = source.grid();
    let interior = sample(&target, |p| {
        let q = src.world_to_index(p);
        (0..3).all(|a| q[a] >= 0.0 && q[a] <= (src.dims[a] - 1) as f64)
    });
    let mut checked = 0;
    for ((got, want), &inner) in resampled
        .data()
        .iter()
        .zip(expected.data())
        .zip(interior.data())
    {
        // Between the outer voxel centres and the half-voxel border values are extended, not
        // extrapolated; only the interior is exact.
        if inner {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
            checked += 1;
        }
    }
    assert!(checked > target.len() / 2, "only {checked} voxels inside");
}

#[test]
fn outside_points_get_the_fill_value() {
    let source = Volume::filled(
        Grid::axis_aligned([4, 4, 4], [1.0; 3], [0.0; 3]).expect("valid"),
        5.0f32,
    );
    let far = Grid::axis_aligned([2, 2, 2], [1.0; 3], [100.0, 0.0, 0.0]).expect("valid");
    let out = resample(&source, &far, Interpolation::Linear, -1.0);
    assert!(out.data().iter().all(|&v| v == -1.0));
    let same = resample(&source, source.grid(), Interpolation::Linear, -1.0);
    assert_eq!(same.data(), source.data());
}

/// Trilinear interpolation written out corner by corner (edge value extended within half a voxel
/// of the border, `None` beyond): the reference for the sampling functions.
fn reference_trilinear(v: &Volume<f32>, p: [f64; 3]) -> Option<f32> {
    let dims = v.grid().dims;
    if !(0..3).all(|a| p[a] >= -0.5 && p[a] <= dims[a] as f64 - 0.5) {
        return None;
    }
    let (mut lo, mut hi, mut w) = ([0usize; 3], [0usize; 3], [0.0f64; 3]);
    for a in 0..3 {
        let c = p[a].clamp(0.0, (dims[a] - 1) as f64);
        lo[a] = c.floor() as usize;
        hi[a] = (lo[a] + 1).min(dims[a] - 1);
        w[a] = c - c.floor();
    }
    let at = |i: usize, j: usize, k: usize| f64::from(*v.at(i, j, k));
    let x = |j: usize, k: usize| at(lo[0], j, k) * (1.0 - w[0]) + at(hi[0], j, k) * w[0];
    let y0 = x(lo[1], lo[2]) * (1.0 - w[1]) + x(hi[1], lo[2]) * w[1];
    let y1 = x(lo[1], hi[2]) * (1.0 - w[1]) + x(hi[1], hi[2]) * w[1];
    Some((y0 * (1.0 - w[2]) + y1 * w[2]) as f32)
}

/// `sample_linear`, `sample_linear_each` (every source at once) and `sample_linear_channels` (the
/// sources one after another in one buffer) give the corner-by-corner reference's value bit for
/// bit, inside, in the half-voxel edge band and outside.
#[test]
fn sampling_one_or_several_volumes_equals_the_reference_interpolation() {
    use mrt_core::resample::{sample_linear, sample_linear_channels, sample_linear_each};
    let dims = [7, 6, 5];
    let grid = Grid::axis_aligned(dims, [1.5, 2.0, 3.0], [0.0; 3]).expect("grid");
    let sources: Vec<Volume<f32>> = (0..3)
        .map(|s| {
            let data = (0..dims.iter().product::<usize>())
                .map(|o| ((o * 37 + s * 101) % 97) as f32 / 7.0 - 3.0)
                .collect();
            Volume::new(grid.clone(), data).expect("volume")
        })
        .collect();
    let channel_major: Vec<f32> = sources.iter().flat_map(|v| v.data().to_vec()).collect();
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..2000 {
        let p = [next() * 8.0 - 1.0, next() * 7.0 - 1.0, next() * 6.0 - 1.0];
        let mut got = [None; 3];
        let inside = sample_linear_each(&sources, p, |s, v| got[s] = Some(v));
        let mut got_channels = [None; 3];
        let inside_channels =
            sample_linear_channels(&channel_major, dims, 3, p, |c, v| got_channels[c] = Some(v));
        assert_eq!(inside_channels, inside, "channels {p:?}");
        for (s, source) in sources.iter().enumerate() {
            let want = reference_trilinear(source, p).map(f32::to_bits);
            assert_eq!(got[s].map(f32::to_bits), want, "each {p:?}");
            assert_eq!(got_channels[s].map(f32::to_bits), want, "channels {p:?}");
            assert_eq!(
                sample_linear(source, p).map(f32::to_bits),
                want,
                "one {p:?}"
            );
            assert_eq!(inside, want.is_some());
        }
    }
}
