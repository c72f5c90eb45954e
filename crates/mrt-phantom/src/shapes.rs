//! Smooth organic solids: superquadrics in a local frame, bent by a few random low-frequency
//! sine displacements ("deformed superquadrics"), so organs are not bare ellipsoids.

use mrt_core::linalg::{self, Mat3, Vec3};

use crate::rng::Rng;

/// What a random blob should look like.
#[derive(Debug, Clone, Copy)]
pub struct BlobSpec {
    /// Centre, body frame (mm).
    pub centre: Vec3,
    /// Axis proportions (scaled to reach the volume).
    pub shape: Vec3,
    /// Volume before deformation (mL).
    pub volume_ml: f64,
    /// Superquadric exponent.
    pub exponent: f64,
    /// Orientation (Euler degrees).
    pub angles_deg: Vec3,
    /// Orientation jitter SD (degrees).
    pub jitter_deg: f64,
    /// Deformation amplitude as a fraction of the smallest semi-axis.
    pub deform: f64,
}

/// One smooth displacement: `amp · sin(k · q + phase)` added to local coordinates.
#[derive(Debug, Clone)]
pub struct Wave {
    k: Vec3,
    phase: f64,
    amp: Vec3,
}

/// A deformed superquadric: inside where Σ |qᵢ / aᵢ|ⁿ ≤ 1, q = local coordinates plus waves.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Centre, body frame (mm).
    pub centre: Vec3,
    /// Body → local rotation.
    pub rotation: Mat3,
    /// Semi-axes (mm).
    pub semi_axes: Vec3,
    /// Superquadric exponent (2 = ellipsoid; larger = boxier).
    pub exponent: f64,
    waves: Vec<Wave>,
    bound_sq: f64,
}

/// Γ(x) for x in (1, 3] (Lanczos), enough for superquadric volumes.
fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

/// Volume (mm³) of an undeformed superquadric with these semi-axes and exponent:
/// 8abc·Γ(1+1/n)³/Γ(1+3/n).
pub fn superquadric_volume(semi: Vec3, n: f64) -> f64 {
    8.0 * semi[0] * semi[1] * semi[2] * gamma(1.0 + 1.0 / n).powi(3) / gamma(1.0 + 3.0 / n)
}

impl Blob {
    /// A random blob per `spec`.
    pub fn random(spec: BlobSpec, rng: &mut Rng) -> Self {
        let BlobSpec {
            centre,
            shape,
            volume_ml,
            exponent: n,
            angles_deg: base_angles_deg,
            jitter_deg,
            deform,
        } = spec;
        let v0 = superquadric_volume(shape, n);
        let s = (volume_ml * 1000.0 / v0).cbrt();
        let semi = shape.map(|a| a * s);
        let angles = [0, 1, 2].map(|i| base_angles_deg[i] + jitter_deg * rng.normal());
        let rotation = linalg::transpose(&linalg::rotation_xyz_deg(angles));
        let min_axis = semi.iter().copied().fold(f64::INFINITY, f64::min);
        let max_axis = semi.iter().copied().fold(0.0, f64::max);
        let waves = (0..3)
            .map(|_| {
                let wavelength = max_axis * rng.range(1.2, 2.5);
                let dir = [rng.normal(), rng.normal(), rng.normal()];
                let norm = linalg::norm(dir).max(1e-9);
                let k = dir.map(|d| d / norm * 2.0 * std::f64::consts::PI / wavelength);
                let amp = [0, 1, 2].map(|_| deform * min_axis * rng.normal() / 3f64.sqrt());
                Wave {
                    k,
                    phase: rng.range(0.0, 2.0 * std::f64::consts::PI),
                    amp,
                }
            })
            .collect();
        Self::with_waves(centre, rotation, semi, n, waves, deform)
    }

    fn with_waves(
        centre: Vec3,
        rotation: Mat3,
        semi: Vec3,
        exponent: f64,
        waves: Vec<Wave>,
        deform: f64,
    ) -> Self {
        let max_axis = semi.iter().copied().fold(0.0, f64::max);
        let min_axis = semi.iter().copied().fold(f64::INFINITY, f64::min);
        // Waves displace by at most Σ|amp|; pad the bounding sphere accordingly.
        let pad: f64 = waves.iter().map(|w| linalg::norm(w.amp)).sum::<f64>() + deform * min_axis;
        let r = max_axis * 3f64.sqrt().max(1.0) + pad;
        Self {
            centre,
            rotation,
            semi_axes: semi,
            exponent,
            waves,
            bound_sq: r * r,
        }
    }

    /// The same blob with every semi-axis longer by `margin_mm`: same centre, orientation and
    /// deformation, so its surface lies about `margin_mm` outside this one's (a capsule).
    pub fn grown(&self, margin_mm: f64) -> Self {
        // The bound is max_axis·√3 + deformation pad; the longest axis grows by `margin_mm`.
        let r = self.bound_sq.sqrt() + margin_mm.max(0.0) * 3f64.sqrt();
        Self {
            centre: self.centre,
            rotation: self.rotation,
            semi_axes: self.semi_axes.map(|a| a + margin_mm),
            exponent: self.exponent,
            waves: self.waves.clone(),
            bound_sq: r * r,
        }
    }

    /// An undeformed axis-aligned ellipsoid (for analytic tests).
    pub fn ellipsoid(centre: Vec3, semi: Vec3) -> Self {
        Self::with_waves(
            centre,
            mrt_core::linalg::IDENTITY,
            semi,
            2.0,
            Vec::new(),
            0.0,
        )
    }

    /// Normalised local coordinates q/a (inside where Σ|·|ⁿ ≤ 1), or `None` when `p` is
    /// certainly outside (bounding sphere).
    #[inline]
    pub fn normalized(&self, p: Vec3) -> Option<Vec3> {
        let d = linalg::sub(p, self.centre);
        if linalg::dot(d, d) > self.bound_sq {
            return None;
        }
        let mut q = linalg::mat_vec(&self.rotation, d);
        let base = q;
        for w in &self.waves {
            let s = (linalg::dot(w.k, base) + w.phase).sin();
            q = linalg::add(q, linalg::scale(w.amp, s));
        }
        Some([
            q[0] / self.semi_axes[0],
            q[1] / self.semi_axes[1],
            q[2] / self.semi_axes[2],
        ])
    }

    /// Σ |qᵢ/aᵢ|ⁿ at `p` (≤ 1 inside), `None` outside the bound.
    #[inline]
    pub fn level(&self, p: Vec3) -> Option<f64> {
        let u = self.normalized(p)?;
        let n = self.exponent;
        Some(if n == 2.0 {
            u[0] * u[0] + u[1] * u[1] + u[2] * u[2]
        } else {
            u[0].abs().powf(n) + u[1].abs().powf(n) + u[2].abs().powf(n)
        })
    }

    /// True inside.
    #[inline]
    pub fn contains(&self, p: Vec3) -> bool {
        self.level(p).is_some_and(|l| l <= 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superquadric_volume_of_sphere_and_cube_limit() {
        let v = superquadric_volume([10.0, 10.0, 10.0], 2.0);
        assert!((v - 4.0 / 3.0 * std::f64::consts::PI * 1000.0).abs() < 1e-6);
        let cube = superquadric_volume([1.0, 1.0, 1.0], 200.0);
        assert!((cube - 8.0).abs() < 0.2, "{cube}");
    }

    #[test]
    fn random_blob_has_the_requested_volume_before_deformation() {
        let mut rng = Rng::new(1, 2);
        let b = Blob::random(
            BlobSpec {
                centre: [0.0; 3],
                shape: [30.0, 25.0, 55.0],
                volume_ml: 175.0,
                exponent: 2.0,
                angles_deg: [0.0; 3],
                jitter_deg: 10.0,
                deform: 0.0,
            },
            &mut rng,
        );
        // Count on a 1 mm lattice.
        let mut n = 0usize;
        for z in -80..=80 {
            for y in -80..=80 {
                for x in -80..=80 {
                    if b.contains([x as f64, y as f64, z as f64]) {
                        n += 1;
                    }
                }
            }
        }
        assert!((n as f64 / 175_000.0 - 1.0).abs() < 0.01, "{n}");
    }

    #[test]
    fn grown_ellipsoid_is_the_ellipsoid_with_longer_axes() {
        // Analytic: an undeformed ellipsoid grown by 5 mm has semi-axes 5 mm longer, so points
        // just inside / outside those axes' ends are inside / outside it.
        let b = Blob::ellipsoid([1.0, 2.0, 3.0], [20.0, 30.0, 40.0]);
        let g = b.grown(5.0);
        for (axis, semi) in [(0, 25.0), (1, 35.0), (2, 45.0)] {
            for sign in [-1.0, 1.0] {
                let mut inside = [1.0, 2.0, 3.0];
                inside[axis] += sign * (semi - 0.1);
                let mut outside = [1.0, 2.0, 3.0];
                outside[axis] += sign * (semi + 0.1);
                assert!(g.contains(inside) && !g.contains(outside), "{axis} {sign}");
                assert!(!b.contains(inside));
            }
        }
    }

    #[test]
    fn grown_deformed_blob_contains_the_original() {
        let mut rng = Rng::new(5, 2);
        let b = Blob::random(
            BlobSpec {
                centre: [0.0; 3],
                shape: [0.55, 0.45, 1.0],
                volume_ml: 175.0,
                exponent: 2.0,
                angles_deg: [0.0, 12.0, 25.0],
                jitter_deg: 5.0,
                deform: 0.06,
            },
            &mut rng,
        );
        let g = b.grown(6.0);
        let (mut inner, mut shell) = (0usize, 0usize);
        for z in -90..=90 {
            for y in -90..=90 {
                for x in -90..=90 {
                    let p = [x as f64, y as f64, z as f64];
                    if b.contains(p) {
                        inner += 1;
                        assert!(g.contains(p), "{p:?}");
                    } else if g.contains(p) {
                        shell += 1;
                    }
                }
            }
        }
        // A 6 mm shell around a ~175 mL kidney-shaped blob (surface ~170 cm²) is ~100 mL.
        assert!(
            inner > 150_000 && (60_000..160_000).contains(&shell),
            "{inner} {shell}"
        );
    }
}
