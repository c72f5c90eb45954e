//! Resampling a volume onto another grid, in world space.
//!
//! For each target voxel centre we take its LPS position, optionally map it through a
//! target→source world transform (registration results), convert it to a continuous source index
//! and interpolate. Both grids may be oblique and anisotropic: everything goes through world mm.
//! Points outside the source (beyond half a voxel past the outer voxel centres) get `outside`.

use rayon::prelude::*;

use crate::grid::{AffineMap, Grid};
use crate::volume::Volume;

/// How values between voxel centres are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Value of the nearest voxel centre: for label maps.
    Nearest,
    /// Trilinear: for intensities (HU, Bq/mL).
    Linear,
}

/// Voxel types that can be resampled.
pub trait Voxel: Copy + Send + Sync {
    /// Widens to f64 for interpolation.
    fn to_f64(self) -> f64;
    /// Narrows from f64 (rounding for integers, saturating at the type's range).
    fn from_f64(v: f64) -> Self;
}

macro_rules! int_voxel {
    ($($t:ty),*) => {$(
        impl Voxel for $t {
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline]
            fn from_f64(v: f64) -> Self { v.round() as $t }
        }
    )*};
}
int_voxel!(u8, u16, i16, i32, u32);

impl Voxel for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Voxel for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Resamples `source` onto `target` (same world positions, no transform).
pub fn resample<T: Voxel>(
    source: &Volume<T>,
    target: &Grid,
    interpolation: Interpolation,
    outside: T,
) -> Volume<T> {
    resample_mapped(source, target, &AffineMap::IDENTITY, interpolation, outside)
}

/// Resamples `source` onto `target`, where `target_to_source_world` maps a target world position
/// (LPS mm) to the source world position whose value it should receive.
pub fn resample_mapped<T: Voxel>(
    source: &Volume<T>,
    target: &Grid,
    target_to_source_world: &AffineMap,
    interpolation: Interpolation,
    outside: T,
) -> Volume<T> {
    // target index → target world → source world → source index, as one affine map.
    let index_map = source
        .grid()
        .world_to_index_map()
        .compose(&target_to_source_world.compose(&target.index_to_world_map()));
    let [nx, ny, _] = target.dims;
    let mut data = vec![outside; target.len()];
    data.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slab)| {
            for j in 0..ny {
                for i in 0..nx {
                    let p = index_map.apply([i as f64, j as f64, k as f64]);
                    let value = match interpolation {
                        Interpolation::Nearest => sample_nearest(source, p),
                        Interpolation::Linear => sample_linear(source, p),
                    };
                    if let Some(v) = value {
                        slab[i + nx * j] = v;
                    }
                }
            }
        });
    Volume::new(target.clone(), data).expect("data sized from target grid")
}

#[inline]
fn inside(p: f64, n: usize) -> bool {
    p >= -0.5 && p <= n as f64 - 0.5
}

/// Nearest-neighbour sample at continuous index `p`, `None` outside.
#[inline]
pub fn sample_nearest<T: Voxel>(source: &Volume<T>, p: [f64; 3]) -> Option<T> {
    let dims = source.grid().dims;
    if !(0..3).all(|a| inside(p[a], dims[a])) {
        return None;
    }
    let idx = [0, 1, 2].map(|a| (p[a].round().max(0.0) as usize).min(dims[a] - 1));
    Some(*source.at(idx[0], idx[1], idx[2]))
}

/// [`sample_linear`] of every volume of `sources` (which share one grid's dims) at continuous
/// index `p`: `emit(source index, value)` for each, the values bit for bit those of
/// [`sample_linear`], with the cell and weights found once. Returns false, emitting nothing,
/// outside the grid or when `sources` is empty.
#[inline]
pub fn sample_linear_each<T: Voxel>(
    sources: &[Volume<T>],
    p: [f64; 3],
    mut emit: impl FnMut(usize, T),
) -> bool {
    let Some(first) = sources.first() else {
        return false;
    };
    let dims = first.grid().dims;
    let Some((corners, w)) = linear_cell(dims, p) else {
        return false;
    };
    for (s, source) in sources.iter().enumerate() {
        assert_eq!(source.grid().dims, dims, "sources must share dims");
        let d = source.data();
        emit(s, T::from_f64(trilinear(|c| d[corners[c]].to_f64(), w)));
    }
    true
}

/// [`sample_linear_each`] of `channels` volumes of `dims` stored one after another in `data`
/// (channel-major: channel `c` is `data[c·n..(c + 1)·n]`, `n` the voxel count of `dims`), as
/// class probabilities are, without copying them into separate volumes: `emit(channel, value)`
/// for each, bit for bit the values of [`sample_linear`] on that channel. Returns false,
/// emitting nothing, outside the grid or when `channels` is 0. Panics if `data` does not hold
/// `channels` volumes.
#[inline]
pub fn sample_linear_channels<T: Voxel>(
    data: &[T],
    dims: [usize; 3],
    channels: usize,
    p: [f64; 3],
    mut emit: impl FnMut(usize, T),
) -> bool {
    let n = dims.iter().product::<usize>();
    assert_eq!(
        data.len(),
        n * channels,
        "data must hold `channels` volumes"
    );
    if channels == 0 {
        return false;
    }
    let Some((corners, w)) = linear_cell(dims, p) else {
        return false;
    };
    for (c, d) in data.chunks_exact(n).enumerate() {
        emit(c, T::from_f64(trilinear(|k| d[corners[k]].to_f64(), w)));
    }
    true
}

/// The trilinear cell of continuous index `p` in a volume of `dims`: the linear indices of its
/// eight corners (x fastest: (lo,lo,lo), (hi,lo,lo), (lo,hi,lo), …) and the weights along each
/// axis; `None` beyond half a voxel past the outer voxel centres. Within half a voxel of the edge
/// the edge value is extended (the corners coincide).
#[inline]
pub(crate) fn linear_cell(dims: [usize; 3], p: [f64; 3]) -> Option<([usize; 8], [f64; 3])> {
    if !(0..3).all(|a| inside(p[a], dims[a])) {
        return None;
    }
    let mut lo = [0usize; 3];
    let mut hi = [0usize; 3];
    let mut w = [0.0f64; 3];
    for a in 0..3 {
        let max = (dims[a] - 1) as f64;
        let c = p[a].clamp(0.0, max);
        let f = c.floor();
        lo[a] = f as usize;
        hi[a] = (lo[a] + 1).min(dims[a] - 1);
        w[a] = c - f;
    }
    let at = |i: usize, j: usize, k: usize| i + dims[0] * (j + dims[1] * k);
    Some((
        [
            at(lo[0], lo[1], lo[2]),
            at(hi[0], lo[1], lo[2]),
            at(lo[0], hi[1], lo[2]),
            at(hi[0], hi[1], lo[2]),
            at(lo[0], lo[1], hi[2]),
            at(hi[0], lo[1], hi[2]),
            at(lo[0], hi[1], hi[2]),
            at(hi[0], hi[1], hi[2]),
        ],
        w,
    ))
}

/// Trilinear interpolation of the eight corner values `v(0..8)` (order of [`linear_cell`]) with
/// axis weights `w`.
#[inline]
pub(crate) fn trilinear(v: impl Fn(usize) -> f64, w: [f64; 3]) -> f64 {
    let c00 = v(0) * (1.0 - w[0]) + v(1) * w[0];
    let c10 = v(2) * (1.0 - w[0]) + v(3) * w[0];
    let c01 = v(4) * (1.0 - w[0]) + v(5) * w[0];
    let c11 = v(6) * (1.0 - w[0]) + v(7) * w[0];
    let c0 = c00 * (1.0 - w[1]) + c10 * w[1];
    let c1 = c01 * (1.0 - w[1]) + c11 * w[1];
    c0 * (1.0 - w[2]) + c1 * w[2]
}

/// Trilinear sample at continuous index `p`, `None` outside. Within half a voxel of the edge the
/// edge value is extended.
#[inline]
pub fn sample_linear<T: Voxel>(source: &Volume<T>, p: [f64; 3]) -> Option<T> {
    let mut value = None;
    sample_linear_each(std::slice::from_ref(source), p, |_, v| value = Some(v));
    value
}
