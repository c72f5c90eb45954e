//! Anatomy revision 2, per seed: how far the kidneys were lowered and the spleen and liver moved
//! against revision 1 (mm), and what still overlaps (fractions, on a 3 mm lattice, of the blobs
//! before precedence): spleen in the kidney capsules, spleen in the liver, each capsule in the
//! liver, the left capsule in the spleen.
//! `cargo run --release -p mrt-phantom --example overlap_stats -- [FIRST_SEED] [COUNT]`
use mrt_phantom::anatomy::{Anatomy, AnatomyRevision};
use mrt_phantom::rng::Rng;
use mrt_phantom::shapes::Blob;

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args().nth(i).map_or(default, |s| {
            s.parse()
                .expect("usage: overlap_stats [FIRST_SEED] [COUNT]")
        })
    };
    let (first, n) = (arg(1, 9000), arg(2, 20));
    println!("seed kid_down L R (mm) spl liv (moved, mm) spleen_in_kidcaps spleen_in_liver kidcapL_in_liver kidcapR_in_liver kidcapL_in_spleen");
    for seed in first..first + n {
        let a = Anatomy::sample(&mut Rng::new(seed, 1), true, AnatomyRevision::R2);
        let r1 = Anatomy::sample(&mut Rng::new(seed, 1), true, AnatomyRevision::R1);
        let d = |a: [f64; 3], b: [f64; 3]| mrt_core::linalg::norm(mrt_core::linalg::sub(a, b));
        print!(
            "{seed} kid_down {:.0} {:.0} spl {:.0} liv {:.0} ",
            d(a.kidneys[0].outer.centre, r1.kidneys[0].outer.centre),
            d(a.kidneys[1].outer.centre, r1.kidneys[1].outer.centre),
            d(a.spleen.centre, r1.spleen.centre),
            d(a.liver.centre, r1.liver.centre)
        );
        let caps: Vec<&Blob> = a
            .kidneys
            .iter()
            .map(|k| k.perirenal_fat.as_ref().expect("revision 2 has a capsule"))
            .collect();
        let sp = Anatomy::lattice_points(&a.spleen, 3.0);
        let frac = |pts: &[[f64; 3]], f: &dyn Fn([f64; 3]) -> bool| {
            pts.iter().filter(|&&p| f(p)).count() as f64 / pts.len().max(1) as f64
        };
        let s_k = frac(&sp, &|p| caps.iter().any(|c| c.contains(p)));
        let s_l = frac(&sp, &|p| a.liver.contains(p));
        let kl = Anatomy::lattice_points(caps[0], 3.0);
        let kr = Anatomy::lattice_points(caps[1], 3.0);
        println!(
            "{:.3} {:.3} {:.3} {:.3} {:.3}",
            s_k,
            s_l,
            frac(&kl, &|p| a.liver.contains(p)),
            frac(&kr, &|p| a.liver.contains(p)),
            frac(&kl, &|p| a.spleen.contains(p)),
        );
    }
}
