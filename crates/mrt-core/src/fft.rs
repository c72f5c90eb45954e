//! Linear 3D convolution by FFT (zero padding, no wrap-around), output on the input's grid.
//!
//! The kernel has odd dimensions and is centred: element (rx, ry, rz) of a (2rx+1)×(2ry+1)×(2rz+1)
//! kernel is the zero offset. Padding to P ≥ n + r along each axis (and to a 2·3·5-smooth length)
//! makes the circular convolution equal to the linear one on the output window. Real-to-complex
//! transform along i (realfft), complex transforms along j and k (rustfft); f32 throughout,
//! parallel over slabs and rows (rayon).

use std::sync::Arc;

use rayon::prelude::*;
use realfft::RealFftPlanner;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::volume::Volume;

/// A centred convolution kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Odd sizes along i, j, k.
    pub dims: [usize; 3],
    /// Values, i fastest.
    pub data: Vec<f32>,
}

/// Why a kernel was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("kernel dims {dims:?} with {len} values: dims must be odd and match the data")]
pub struct KernelError {
    /// Dims given.
    pub dims: [usize; 3],
    /// Values given.
    pub len: usize,
}

impl Kernel {
    /// Validates odd dims and length.
    pub fn new(dims: [usize; 3], data: Vec<f32>) -> Result<Self, KernelError> {
        if dims.iter().any(|d| d.is_multiple_of(2)) || dims.iter().product::<usize>() != data.len()
        {
            return Err(KernelError {
                dims,
                len: data.len(),
            });
        }
        Ok(Self { dims, data })
    }

    fn radius(&self) -> [usize; 3] {
        self.dims.map(|d| d / 2)
    }
}

/// Smallest 2·3·5-smooth number ≥ `n`.
pub fn fast_length(n: usize) -> usize {
    let mut m = n.max(1);
    loop {
        let mut x = m;
        for p in [2, 3, 5] {
            while x.is_multiple_of(p) {
                x /= p;
            }
        }
        if x == 1 {
            return m;
        }
        m += 1;
    }
}

/// Transforms every column (stride `xc`, length `py`) of one `[j][ic]` slab in place.
fn fft_columns(slab: &mut [Complex32], xc: usize, py: usize, fft: &dyn Fft<f32>) {
    let mut line = vec![Complex32::new(0.0, 0.0); py];
    for i in 0..xc {
        for (j, l) in line.iter_mut().enumerate() {
            *l = slab[j * xc + i];
        }
        fft.process(&mut line);
        for (j, l) in line.iter().enumerate() {
            slab[j * xc + i] = *l;
        }
    }
}

struct Plan {
    p: [usize; 3],
    xc: usize,
    fwd_y: Arc<dyn Fft<f32>>,
    fwd_z: Arc<dyn Fft<f32>>,
    inv_y: Arc<dyn Fft<f32>>,
    inv_z: Arc<dyn Fft<f32>>,
}

impl Plan {
    fn new(p: [usize; 3]) -> Self {
        let mut planner = FftPlanner::<f32>::new();
        Self {
            p,
            xc: p[0] / 2 + 1,
            fwd_y: planner.plan_fft_forward(p[1]),
            fwd_z: planner.plan_fft_forward(p[2]),
            inv_y: planner.plan_fft_inverse(p[1]),
            inv_z: planner.plan_fft_inverse(p[2]),
        }
    }

    /// Real volume (padded layout, i fastest, P dims) → spectrum in [j][ic][k] layout.
    fn forward(&self, real: Vec<f32>) -> Vec<Complex32> {
        let [px, py, pz] = self.p;
        let xc = self.xc;
        let r2c = RealFftPlanner::<f32>::new().plan_fft_forward(px);
        // i: real → complex, per row; layout [k][j][ic].
        let mut a = vec![Complex32::new(0.0, 0.0); xc * py * pz];
        a.par_chunks_mut(xc * py)
            .zip(real.par_chunks(px * py))
            .for_each(|(out_slab, in_slab)| {
                let mut row = vec![0.0f32; px];
                let mut scratch = r2c.make_scratch_vec();
                for j in 0..py {
                    row.copy_from_slice(&in_slab[j * px..(j + 1) * px]);
                    r2c.process_with_scratch(
                        &mut row,
                        &mut out_slab[j * xc..(j + 1) * xc],
                        &mut scratch,
                    )
                    .expect("sizes from the plan");
                }
                // j: complex FFT per column within the slab.
                fft_columns(out_slab, xc, py, self.fwd_y.as_ref());
            });
        // k: transpose to [j][ic][k], FFT contiguous lines.
        let mut t = vec![Complex32::new(0.0, 0.0); xc * py * pz];
        t.par_chunks_mut(xc * pz)
            .enumerate()
            .for_each(|(j, plane)| {
                for i in 0..xc {
                    let line = &mut plane[i * pz..(i + 1) * pz];
                    for (k, v) in line.iter_mut().enumerate() {
                        *v = a[k * xc * py + j * xc + i];
                    }
                    self.fwd_z.process(line);
                }
            });
        t
    }

    /// Spectrum in [j][ic][k] layout → real padded volume (unnormalised).
    fn inverse(&self, mut t: Vec<Complex32>) -> Vec<f32> {
        let [px, py, pz] = self.p;
        let xc = self.xc;
        t.par_chunks_mut(pz)
            .for_each(|line| self.inv_z.process(line));
        let c2r = RealFftPlanner::<f32>::new().plan_fft_inverse(px);
        let mut real = vec![0.0f32; px * py * pz];
        real.par_chunks_mut(px * py)
            .enumerate()
            .for_each(|(k, out_slab)| {
                let mut slab = vec![Complex32::new(0.0, 0.0); xc * py];
                for j in 0..py {
                    for i in 0..xc {
                        slab[j * xc + i] = t[j * xc * pz + i * pz + k];
                    }
                }
                fft_columns(&mut slab, xc, py, self.inv_y.as_ref());
                let mut scratch = c2r.make_scratch_vec();
                for j in 0..py {
                    let row = &mut slab[j * xc..(j + 1) * xc];
                    // The imaginary parts of DC and Nyquist must be zero for c2r.
                    row[0].im = 0.0;
                    if px.is_multiple_of(2) {
                        row[xc - 1].im = 0.0;
                    }
                    c2r.process_with_scratch(
                        row,
                        &mut out_slab[j * px..(j + 1) * px],
                        &mut scratch,
                    )
                    .expect("sizes from the plan");
                }
            });
        real
    }
}

/// `volume ⊗ kernel` on the volume's grid (zero outside the volume).
pub fn fft_convolve(volume: &Volume<f32>, kernel: &Kernel) -> Volume<f32> {
    let n = volume.grid().dims;
    let r = kernel.radius();
    let p = [0, 1, 2].map(|a| fast_length(n[a] + r[a] + 1));
    let plan = Plan::new(p);
    let [px, py, pz] = p;
    let mut padded = vec![0.0f32; px * py * pz];
    for k in 0..n[2] {
        for j in 0..n[1] {
            let src = &volume.data()[volume.grid().offset(0, j, k)..][..n[0]];
            padded[(k * py + j) * px..][..n[0]].copy_from_slice(src);
        }
    }
    // Kernel with its centre at index 0, negative offsets wrapped to the end.
    let mut kp = vec![0.0f32; px * py * pz];
    let [kx, ky, _] = kernel.dims;
    for (idx, &v) in kernel.data.iter().enumerate() {
        let (i, j, k) = (idx % kx, (idx / kx) % ky, idx / (kx * ky));
        let wrap = |x: usize, rad: usize, m: usize| (x + m - rad) % m;
        kp[(wrap(k, r[2], pz) * py + wrap(j, r[1], py)) * px + wrap(i, r[0], px)] = v;
    }
    let mut spectrum = plan.forward(padded);
    let kspec = plan.forward(kp);
    let scale = 1.0 / (px * py * pz) as f32;
    spectrum
        .par_iter_mut()
        .zip(kspec.par_iter())
        .for_each(|(a, b)| *a = *a * *b * scale);
    let real = plan.inverse(spectrum);
    let mut out = vec![0.0f32; volume.grid().len()];
    out.par_chunks_mut(n[0] * n[1])
        .enumerate()
        .for_each(|(k, slab)| {
            for j in 0..n[1] {
                slab[j * n[0]..(j + 1) * n[0]].copy_from_slice(&real[(k * py + j) * px..][..n[0]]);
            }
        });
    Volume::new(volume.grid().clone(), out).expect("same grid")
}

/// Direct convolution (O(N·K)), the reference for tests.
pub fn direct_convolve(volume: &Volume<f32>, kernel: &Kernel) -> Volume<f32> {
    let n = volume.grid().dims;
    let r = kernel.radius();
    let [kx, ky, kz] = kernel.dims;
    let mut out = vec![0.0f32; volume.grid().len()];
    for k in 0..n[2] {
        for j in 0..n[1] {
            for i in 0..n[0] {
                let mut acc = 0.0f64;
                for c in 0..kz {
                    let z = k as i64 + r[2] as i64 - c as i64;
                    if z < 0 || z >= n[2] as i64 {
                        continue;
                    }
                    for b in 0..ky {
                        let y = j as i64 + r[1] as i64 - b as i64;
                        if y < 0 || y >= n[1] as i64 {
                            continue;
                        }
                        for a in 0..kx {
                            let x = i as i64 + r[0] as i64 - a as i64;
                            if x < 0 || x >= n[0] as i64 {
                                continue;
                            }
                            acc += f64::from(kernel.data[a + kx * (b + ky * c)])
                                * f64::from(*volume.at(x as usize, y as usize, z as usize));
                        }
                    }
                }
                out[volume.grid().offset(i, j, k)] = acc as f32;
            }
        }
    }
    Volume::new(volume.grid().clone(), out).expect("same grid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grid;

    #[test]
    fn fft_convolution_equals_direct_convolution() {
        let g = Grid::axis_aligned([13, 10, 7], [1.0; 3], [0.0; 3]).expect("grid");
        let data: Vec<f32> = (0..g.len())
            .map(|n| ((n * 37 % 101) as f32) / 10.0 - 3.0)
            .collect();
        let v = Volume::new(g, data).expect("sized");
        let kd = [5, 3, 7];
        let kdata: Vec<f32> = (0..105)
            .map(|n| ((n * 13 % 17) as f32 - 5.0) / 7.0)
            .collect();
        let k = Kernel::new(kd, kdata).expect("kernel");
        let a = fft_convolve(&v, &k);
        let b = direct_convolve(&v, &k);
        let max = b.data().iter().fold(0.0f32, |m, x| m.max(x.abs()));
        for (x, y) in a.data().iter().zip(b.data()) {
            assert!((x - y).abs() <= 1e-4 * max, "{x} vs {y}");
        }
        assert!(Kernel::new([2, 3, 3], vec![0.0; 18]).is_err());
        assert_eq!(fast_length(97), 100);
    }
}
