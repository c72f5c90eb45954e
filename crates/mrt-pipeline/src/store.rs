//! The `Store` seam: named artifacts in any `object_store` backend (a local directory for
//! `mrtdose run`, S3 for the services). Keys are `studies/<study>/<stage>/<name>`. Artifacts are
//! written once: a second write of the same key is refused by the backend (conditional put), so
//! two workers racing on one stage cannot both win.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("object store, key {key}: {source}")]
    Backend {
        /// Key involved.
        key: String,
        /// Backend error.
        #[source]
        source: object_store::Error,
    },
    /// A local file could not be read or written while staging artifacts.
    #[error("{path}: {source}")]
    Local {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Artifact storage over an object store.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
}

/// Where an S3-compatible store is.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:8333`.
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region (any value for most non-AWS servers).
    pub region: String,
}

/// `studies/<study>/<stage>/<name>`.
pub fn key(study: &str, stage: &str, name: &str) -> String {
    format!("studies/{study}/{stage}/{name}")
}

impl Store {
    /// Wraps any backend.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }

    /// The same backend seen under `prefix/` (one bucket, several deployments or test runs).
    pub fn with_prefix(self, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            return self;
        }
        Self {
            inner: Arc::new(object_store::prefix::PrefixStore::new(self.inner, prefix)),
        }
    }

    /// A local directory (created if missing).
    pub fn local(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::Local {
            path: root.to_path_buf(),
            source,
        })?;
        let fs = LocalFileSystem::new_with_prefix(root).map_err(|source| StoreError::Backend {
            key: root.display().to_string(),
            source,
        })?;
        Ok(Self::new(Arc::new(fs)))
    }

    /// An S3-compatible bucket (AWS, SeaweedFS, MinIO, ...). Conditional writes use
    /// `If-None-Match: *`, which the server must honour.
    pub fn s3(cfg: &S3Config) -> Result<Self, StoreError> {
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&cfg.endpoint)
            .with_bucket_name(&cfg.bucket)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(&cfg.secret_access_key)
            .with_region(&cfg.region)
            .with_allow_http(cfg.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()
            .map_err(|source| StoreError::Backend {
                key: format!("{}/{}", cfg.endpoint, cfg.bucket),
                source,
            })?;
        Ok(Self::new(Arc::new(s3)))
    }

    /// Writes `key` once. Returns false (and writes nothing) when it already exists.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<bool, StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .inner
            .put_opts(&ObjectPath::from(key), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(StoreError::Backend {
                key: key.into(),
                source,
            }),
        }
    }

    /// Reads `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let err = |source| StoreError::Backend {
            key: key.into(),
            source,
        };
        self.inner
            .get(&ObjectPath::from(key))
            .await
            .map_err(err)?
            .bytes()
            .await
            .map_err(err)
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.inner.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(StoreError::Backend {
                key: key.into(),
                source,
            }),
        }
    }

    /// Keys under `prefix/`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let items: Vec<_> = self
            .inner
            .list(Some(&ObjectPath::from(prefix)))
            .try_collect()
            .await
            .map_err(|source| StoreError::Backend {
                key: prefix.into(),
                source,
            })?;
        let mut keys: Vec<String> = items.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        Ok(keys)
    }

    /// The names one level below `prefix/` (e.g. the study ids under `studies`).
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let listing = self
            .inner
            .list_with_delimiter(Some(&ObjectPath::from(prefix)))
            .await
            .map_err(|source| StoreError::Backend {
                key: prefix.into(),
                source,
            })?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Copies every artifact of `studies/<study>/<stage>/` into `dir/<stage>/`; returns the bytes.
    pub async fn download_stage(
        &self,
        study: &str,
        stage: &str,
        dir: &Path,
    ) -> Result<u64, StoreError> {
        let prefix = format!("studies/{study}/{stage}");
        let mut total = 0;
        for k in self.list(&prefix).await? {
            let name = &k[prefix.len() + 1..];
            let path = dir.join(stage).join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::Local {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let bytes = self.get(&k).await?;
            total += bytes.len() as u64;
            std::fs::write(&path, &bytes).map_err(|source| StoreError::Local { path, source })?;
        }
        Ok(total)
    }

    /// The keys of a study's user-facing results that exist, in a fixed order: `report.json`,
    /// `report.html`, `dose_Gy.nii.gz`, then `labels_tpN.nii.gz` per time point. The embedded
    /// runner copies these into `--out`; the services' `GetReport` streams them.
    pub async fn result_keys(&self, study: &str) -> Result<Vec<String>, StoreError> {
        let mut wanted = vec![
            key(study, "report", "report.json"),
            key(study, "report", "report.html"),
            key(study, "dose", "dose_Gy.nii.gz"),
        ];
        let mut labels: Vec<String> = self
            .list(&format!("studies/{study}/segment"))
            .await?
            .into_iter()
            .filter(|k| {
                k.rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with("labels_tp"))
            })
            .collect();
        labels.sort();
        wanted.extend(labels);
        let mut found = Vec::with_capacity(wanted.len());
        for k in wanted {
            if self.exists(&k).await? {
                found.push(k);
            }
        }
        Ok(found)
    }

    /// Uploads every file in `dir` as `studies/<study>/<stage>/<file name>` (write-once: a key
    /// that exists is kept, which is what a redelivered, deterministic stage wants); returns the
    /// bytes.
    pub async fn upload_stage(
        &self,
        study: &str,
        stage: &str,
        dir: &Path,
    ) -> Result<u64, StoreError> {
        let entries = std::fs::read_dir(dir).map_err(|source| StoreError::Local {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut total = 0;
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).map_err(|source| StoreError::Local {
                path: path.clone(),
                source,
            })?;
            total += bytes.len() as u64;
            self.put_new(&key(study, stage, &name), Bytes::from(bytes))
                .await?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn artifacts_are_written_once_and_listed_by_stage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::local(dir.path()).expect("store");
        let k = key("s1", "ingest", "study.json");
        assert!(store
            .put_new(&k, Bytes::from_static(b"first"))
            .await
            .expect("put"));
        assert!(!store
            .put_new(&k, Bytes::from_static(b"second"))
            .await
            .expect("put"));
        assert_eq!(
            store.get(&k).await.expect("get"),
            Bytes::from_static(b"first")
        );
        assert!(store.exists(&k).await.expect("head"));
        assert!(!store
            .exists(&key("s1", "ingest", "other"))
            .await
            .expect("head"));
        assert_eq!(
            store.list("studies/s1/ingest").await.expect("list"),
            vec![k]
        );
    }
}
