//! Nelder-Mead simplex minimisation (Lagarias et al. 1998 coefficients).

/// Minimises `f` from `x0` with initial steps `step`; stops after `max_evals` evaluations or
/// when the simplex's value spread falls below `ftol`. Returns (x, f(x), evaluations).
pub fn minimize(
    f: &dyn Fn(&[f64]) -> f64,
    x0: &[f64],
    step: &[f64],
    max_evals: usize,
    ftol: f64,
) -> (Vec<f64>, f64, usize) {
    minimize_within(f, x0, step, max_evals, ftol, 0.0)
}

/// [`minimize`], also stopping once every vertex lies within `xtol` of the best one in every
/// coordinate (the simplex has shrunk below the precision that matters). Cost functions with
/// small discontinuities (trimmed fits) never meet `ftol`; this ends them where the answer is
/// known to `xtol`.
pub fn minimize_within(
    f: &dyn Fn(&[f64]) -> f64,
    x0: &[f64],
    step: &[f64],
    max_evals: usize,
    ftol: f64,
    xtol: f64,
) -> (Vec<f64>, f64, usize) {
    let n = x0.len();
    let mut pts: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..n {
        let mut p = x0.to_vec();
        p[i] += step[i];
        pts.push(p);
    }
    let mut vals: Vec<f64> = pts.iter().map(|p| f(p)).collect();
    let mut evals = n + 1;
    while evals < max_evals {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        pts = order.iter().map(|&i| pts[i].clone()).collect();
        vals = order.iter().map(|&i| vals[i]).collect();
        if (vals[n] - vals[0]).abs() <= ftol * (vals[0].abs() + ftol) {
            break;
        }
        let diameter = pts[1..]
            .iter()
            .flat_map(|p| p.iter().zip(&pts[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if diameter < xtol {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|d| pts[..n].iter().map(|p| p[d]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|d| centroid[d] + t * (pts[n][d] - centroid[d]))
                .collect()
        };
        let xr = along(-1.0);
        let fr = f(&xr);
        evals += 1;
        if fr < vals[0] {
            let xe = along(-2.0);
            let fe = f(&xe);
            evals += 1;
            if fe < fr {
                pts[n] = xe;
                vals[n] = fe;
            } else {
                pts[n] = xr;
                vals[n] = fr;
            }
        } else if fr < vals[n - 1] {
            pts[n] = xr;
            vals[n] = fr;
        } else {
            let (xc, fc) = if fr < vals[n] {
                let x = along(-0.5);
                let v = f(&x);
                (x, v)
            } else {
                let x = along(0.5);
                let v = f(&x);
                (x, v)
            };
            evals += 1;
            if fc < vals[n].min(fr) {
                pts[n] = xc;
                vals[n] = fc;
            } else {
                for i in 1..=n {
                    pts[i] = (0..n)
                        .map(|d| pts[0][d] + 0.5 * (pts[i][d] - pts[0][d]))
                        .collect();
                    vals[i] = f(&pts[i]);
                }
                evals += n;
            }
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| vals[a].total_cmp(&vals[b]))
        .unwrap_or(0);
    (pts[best].clone(), vals[best], evals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_rosenbrock_valley() {
        let f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let (x, v, _) = minimize(&f, &[-1.2, 1.0], &[0.5, 0.5], 5000, 1e-16);
        assert!(v < 1e-10, "{v}");
        assert!((x[0] - 1.0).abs() < 1e-4 && (x[1] - 1.0).abs() < 1e-4);
    }

    #[test]
    fn a_parameter_tolerance_ends_a_noisy_minimisation_near_its_minimum() {
        // A bowl with a sawtooth of amplitude 1e-7: the value spread never falls below ftol.
        let f = |x: &[f64]| {
            let r2 = (x[0] - 0.3).powi(2) + (x[1] + 0.7).powi(2);
            r2 + 1e-7 * ((x[0] * 1e4).sin() + (x[1] * 1e4).cos())
        };
        let (_, _, all) = minimize(&f, &[0.0, 0.0], &[0.5, 0.5], 2000, 1e-16);
        let (x, _, evals) = minimize_within(&f, &[0.0, 0.0], &[0.5, 0.5], 2000, 1e-16, 1e-3);
        assert!(all >= 2000, "ftol alone runs to the limit: {all}");
        assert!(evals < 400, "stopped after {evals}");
        assert!(
            (x[0] - 0.3).abs() < 2e-3 && (x[1] + 0.7).abs() < 2e-3,
            "{x:?}"
        );
    }
}
