//! One ONNX Runtime session per process, reused for every CT: load the runtime library, check the
//! model against its card, pick the device, and run canonicalise → sliding window → map back →
//! clean up.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use mrt_core::grid::AffineMap;
use mrt_core::{Grid, Volume};
use ort::environment::Environment;
use ort::ep::{ExecutionProvider, CUDA};
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;

use crate::canonical::{check_hu, model_grid, model_input, shifted_grid};
use crate::card::ModelBundle;
use crate::error::SegmentError;
use crate::fusion::{Contribution, Probabilities, ProbabilitySum};
use crate::organ_contact::refine_organ_contacts;
use crate::postprocess::{clean_up, labels_on_grid, OrganSummary};
use crate::refine::{ct_numbers, refine_with_intensity};
use crate::window::{sliding_window, Plan};

/// Where to run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    /// CUDA when the runtime has it and it starts; otherwise the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA or an error.
    Cuda,
}

/// The runtime library: `ORT_DYLIB_PATH`, else `.ort/lib/libonnxruntime.so` under the current
/// directory (where `scripts/setup-ort.sh` puts it).
pub fn default_runtime_path() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".ort/lib/libonnxruntime.so"))
}

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime from `library` once per process.
fn environment(library: &Path) -> Result<&'static Environment, SegmentError> {
    if ENVIRONMENT.get().is_none() && !library.exists() {
        return Err(SegmentError::RuntimeMissing {
            path: library.to_path_buf(),
        });
    }
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("mrtdose")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|detail| SegmentError::RuntimeLoad {
            path: library.to_path_buf(),
            detail: detail.clone(),
        })
}

/// A loaded model, ready for many CTs.
pub struct Segmenter {
    bundle: ModelBundle,
    session: Mutex<Session>,
    provider: &'static str,
    batch: usize,
}

/// One CT's class probabilities on the model grid (refined by the CT's intensities where the
/// card asks for it), before labelling.
#[derive(Debug, Clone)]
pub struct Inferred {
    /// Softmax probabilities on the model grid.
    pub probabilities: Probabilities,
    /// The CT numbers the network saw (HU, clipped to the card's window) on the model grid, for
    /// the clean-up's choice of organ pieces.
    pub ct_hu: Volume<f32>,
    /// HU check warnings.
    pub notes: Vec<String>,
    /// The sliding window's overlap.
    pub window_overlap: f64,
    /// The model-grid shifts (model voxels) whose probabilities were averaged with the unshifted
    /// grid's; empty: the unshifted grid alone.
    pub grid_shifts_voxels: Vec<[f64; 3]>,
    /// Seconds: canonicalise, infer.
    pub seconds: [f64; 2],
}

/// One CT's segmentation.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Labels on the CT's own grid, values as in the model card.
    pub labels: Volume<u8>,
    /// Per organ: volume, clean-up, plausibility.
    pub organs: Vec<OrganSummary>,
    /// HU check warnings and clean-up notes.
    pub notes: Vec<String>,
    /// Execution provider that ran (`CUDAExecutionProvider` or `CPUExecutionProvider`).
    pub provider: &'static str,
    /// Seconds per step: canonicalise, infer, map back and clean up.
    pub seconds: [f64; 3],
}

fn ort_err(e: impl std::fmt::Display) -> SegmentError {
    SegmentError::Runtime(e.to_string())
}

impl Segmenter {
    /// Loads the model in `model_dir` (with its card) on `device`, ONNX Runtime from `library`.
    pub fn load(model_dir: &Path, device: Device, library: &Path) -> Result<Self, SegmentError> {
        let bundle = ModelBundle::load(model_dir)?;
        let env = environment(library)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let builder = || -> Result<_, SegmentError> {
            Session::builder(env)
                .map_err(ort_err)?
                .with_intra_threads(threads)
                .map_err(ort_err)
        };
        let cuda_compiled = CUDA::is_available().unwrap_or(false);
        let mut provider = "CPUExecutionProvider";
        let session = match device {
            Device::Cpu => builder()?
                .commit_from_file(&bundle.onnx_path)
                .map_err(ort_err)?,
            Device::Cuda | Device::Auto => {
                let with_cuda = if cuda_compiled {
                    builder()?
                        .with_execution_providers([CUDA::default().build().error_on_failure()])
                        .map_err(|e| e.to_string())
                        .and_then(|mut b| {
                            b.commit_from_file(&bundle.onnx_path)
                                .map_err(|e| e.to_string())
                        })
                } else {
                    Err("this ONNX Runtime library has no CUDA provider (install onnxruntime-gpu: ORT_FLAVOUR=gpu bash scripts/setup-ort.sh)".to_string())
                };
                match (with_cuda, device) {
                    (Ok(s), _) => {
                        provider = "CUDAExecutionProvider";
                        s
                    }
                    (Err(detail), Device::Cuda) => {
                        return Err(SegmentError::Device {
                            requested: "cuda".into(),
                            detail,
                        })
                    }
                    (Err(detail), _) => {
                        tracing::info!(%detail, "CUDA unavailable, using the CPU");
                        builder()?
                            .commit_from_file(&bundle.onnx_path)
                            .map_err(ort_err)?
                    }
                }
            }
        };
        check_graph(&session, &bundle)?;
        tracing::info!(
            provider,
            model = %bundle.card.name,
            version = %bundle.card.version,
            "segmentation model loaded"
        );
        Ok(Self {
            bundle,
            session: Mutex::new(session),
            provider,
            batch: if provider == "CUDAExecutionProvider" {
                4
            } else {
                1
            },
        })
    }

    /// The model's bundle (card, paths, label names).
    pub fn bundle(&self) -> &ModelBundle {
        &self.bundle
    }

    /// The execution provider in use.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Segments `ct` (HU, any orientation and spacing); labels come back on the CT's grid.
    pub fn segment(&self, ct: &Volume<f32>) -> Result<Segmentation, SegmentError> {
        let inferred = self.infer(ct)?;
        Ok(self.label(&inferred.probabilities, ct.grid(), &inferred))
    }

    /// The model's class probabilities for `ct` (HU, any orientation and spacing) on the model
    /// grid: canonicalise and infer with the card's `overlap` and `grid_shifts_voxels`, no labels
    /// yet (see [`Segmenter::label`]).
    pub fn infer(&self, ct: &Volume<f32>) -> Result<Inferred, SegmentError> {
        let card = &self.bundle.card;
        self.infer_views(ct, card.overlap, &card.grid_shifts_voxels)
    }

    /// [`Segmenter::infer`] for a CT whose probabilities will be averaged with other registered
    /// CTs' (the pipeline's `fuse_timepoints`): the card's `fused_overlap` and no grid shifts, as
    /// the registered CTs already sample the anatomy at other sub-voxel positions.
    pub fn infer_for_fusion(&self, ct: &Volume<f32>) -> Result<Inferred, SegmentError> {
        let card = &self.bundle.card;
        self.infer_views(ct, card.fused_overlap.unwrap_or(card.overlap), &[])
    }

    /// Canonicalise and infer with the sliding window's `overlap` on the model grid and on that
    /// grid moved by each of `grid_shifts` (model voxels), averaged on the unshifted grid.
    fn infer_views(
        &self,
        ct: &Volume<f32>,
        overlap: f64,
        grid_shifts: &[[f64; 3]],
    ) -> Result<Inferred, SegmentError> {
        let card = &self.bundle.card;
        if !(0.0..0.95).contains(&overlap) {
            return Err(SegmentError::Runtime(format!(
                "sliding-window overlap {overlap} outside [0, 0.95)"
            )));
        }
        let t0 = Instant::now();
        let grid = model_grid(ct.grid(), card)?;
        let notes = check_hu(ct)?;
        let input = model_input(ct, &grid, card);
        let t1 = Instant::now();
        let channels = self.bundle.label_names.len();
        let plan = Plan {
            dims: grid.dims,
            patch_dhw: card.patch_size,
            overlap,
            channels,
            batch: self.batch,
            logits: card.output.kind == "logits",
        };
        let [nx, ny, nz] = grid.dims;
        let (pw, ph, pd) = (
            card.patch_size[2].min(nx),
            card.patch_size[1].min(ny),
            card.patch_size[0].min(nz),
        );
        let mut session = self.session.lock().map_err(|_| {
            SegmentError::Runtime("session lock poisoned by an earlier panic".into())
        })?;
        let input_name = card.input.name.clone();
        let output_name = card.output.name.clone();
        let mut infer = |data: &[f32], n: usize| -> Result<Vec<f32>, SegmentError> {
            let tensor = TensorRef::from_array_view(([n, 1, pd, ph, pw], data)).map_err(ort_err)?;
            let outputs = session
                .run(ort::inputs![input_name.as_str() => tensor])
                .map_err(ort_err)?;
            let value = outputs
                .get(&output_name)
                .ok_or_else(|| SegmentError::Runtime(format!("no output named {output_name:?}")))?;
            let (_, values) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
            Ok(values.to_vec())
        };
        let own = Probabilities {
            grid: grid.clone(),
            channels,
            data: sliding_window(&input, &plan, &mut infer)?,
        };
        // Test-time grid shifts: the same window over the CT sampled between the model voxels,
        // averaged onto the unshifted grid as each view is done (one view held at a time).
        let mut views = ProbabilitySum::new(own);
        for &shift in grid_shifts {
            let other = shifted_grid(&grid, shift);
            let data = sliding_window(&model_input(ct, &other, card), &plan, &mut infer)?;
            views.add(&Contribution {
                probabilities: &Probabilities {
                    grid: other,
                    channels,
                    data,
                },
                own_to_other: AffineMap::IDENTITY,
            });
        }
        drop(session);
        let mut probs = views.mean().data;
        if let Some(settings) = &card.intensity_refinement {
            refine_with_intensity(
                &mut probs,
                &input,
                grid.dims,
                channels,
                &card.intensity,
                settings,
            );
            if let Some(contact) = &settings.organ_contact {
                refine_organ_contacts(
                    &mut probs,
                    &input,
                    grid.dims,
                    channels,
                    &card.intensity,
                    contact,
                );
            }
        }
        let t2 = Instant::now();
        let ct_hu = Volume::new(grid.clone(), ct_numbers(&input, &card.intensity))
            .expect("the input covers the model grid");
        Ok(Inferred {
            ct_hu,
            probabilities: Probabilities {
                grid,
                channels,
                data: probs,
            },
            notes,
            window_overlap: overlap,
            grid_shifts_voxels: grid_shifts.to_vec(),
            seconds: [(t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64()],
        })
    }

    /// Labels on `target` (a CT grid) from `probabilities` (this CT's own, as `inferred` holds
    /// them, or fused with other time points'), then the clean-up.
    pub fn label(
        &self,
        probabilities: &Probabilities,
        target: &Grid,
        inferred: &Inferred,
    ) -> Segmentation {
        let t2 = Instant::now();
        let mut labels = labels_on_grid(
            &probabilities.data,
            &probabilities.grid,
            probabilities.channels,
            target,
        );
        let (organs, clean_notes) =
            clean_up(&mut labels, &self.bundle.label_names, &inferred.ct_hu);
        let mut notes = inferred.notes.clone();
        notes.extend(clean_notes);
        let t3 = Instant::now();
        Segmentation {
            labels,
            organs,
            notes,
            provider: self.provider,
            seconds: [
                inferred.seconds[0],
                inferred.seconds[1],
                (t3 - t2).as_secs_f64(),
            ],
        }
    }
}

/// The graph's input and output names, ranks and channel counts must match the card.
fn check_graph(session: &Session, bundle: &ModelBundle) -> Result<(), SegmentError> {
    let card = &bundle.card;
    let mismatch = |problem: String| SegmentError::ModelMismatch {
        path: bundle.onnx_path.clone(),
        problem,
    };
    let names = |outlets: &[ort::value::Outlet]| -> Vec<String> {
        outlets.iter().map(|o| o.name().to_string()).collect()
    };
    let input = session
        .inputs()
        .iter()
        .find(|o| o.name() == card.input.name)
        .ok_or_else(|| {
            mismatch(format!(
                "card input {:?} is not among the graph inputs {:?}",
                card.input.name,
                names(session.inputs())
            ))
        })?;
    let output = session
        .outputs()
        .iter()
        .find(|o| o.name() == card.output.name)
        .ok_or_else(|| {
            mismatch(format!(
                "card output {:?} is not among the graph outputs {:?}",
                card.output.name,
                names(session.outputs())
            ))
        })?;
    for (what, outlet, channels) in [
        ("input", input, 1i64),
        ("output", output, bundle.label_names.len() as i64),
    ] {
        if let Some(shape) = outlet.dtype().tensor_shape() {
            if shape.len() != 5 {
                return Err(mismatch(format!(
                    "{what} {:?} has rank {}, the card says NCDHW (rank 5)",
                    outlet.name(),
                    shape.len()
                )));
            }
            if shape[1] >= 0 && shape[1] != channels {
                return Err(mismatch(format!(
                    "{what} {:?} has {} channels, the card implies {channels}",
                    outlet.name(),
                    shape[1]
                )));
            }
        }
    }
    Ok(())
}
