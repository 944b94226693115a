//! Where evidence bytes live: an [`ObjectStore`] (the local file system under
//! `DATA_DIR` by default; any S3-compatible store in production), addressed by the
//! SHA-256 of the content, so identical files are stored once.
//!
//! A blob is written while it arrives: hashed and sent on in parts, never held whole
//! in memory, and refused as soon as it passes the size limit. It goes first to
//! `staging/<random>`, and only once every byte is durable is it moved to
//! `blobs/<first two hex digits>/<sha256>`. A reader therefore never sees part of a
//! blob; an upload cut off halfway leaves only a staging object, which
//! [`BlobStore::sweep_staging`] removes once it is old enough not to be in flight.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::{
    ObjectStore, ObjectStoreExt, WriteMultipart, local::LocalFileSystem, path::Path,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

/// Why storing or reading a blob failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("no blob {0}")]
    Missing(String),
    #[error("reading the upload: {0}")]
    Source(String),
    /// The content was refused by the caller's check while it streamed.
    #[error("{0}")]
    Refused(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
    /// False when identical bytes were already stored.
    pub new: bool,
}

/// Content-addressed blobs over any object store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Bytes buffered per part before it is written. S3 needs at least 5 MiB per part;
    /// on a local disk small parts keep each upload's memory small.
    part_size: usize,
    /// The directory of a local store, so that a reader on a blocking thread can read
    /// a blob's file directly (see [`BlobStore::local_file`]).
    local_root: Option<std::path::PathBuf>,
}

/// Parts in flight per upload, on top of the one being filled.
const PARTS_IN_FLIGHT: usize = 1;

/// Sees an upload's bytes as they arrive, and may refuse it: `Some(chunk)` for each
/// chunk, then `None` once the body has ended. A refusal stops the upload and leaves
/// nothing stored.
pub type Watch<'a> = &'a mut (dyn FnMut(Option<&[u8]>) -> Result<(), String> + Send);

/// The path of the blob with this hash.
fn blob_path(sha256: &str) -> Path {
    Path::from(format!("blobs/{}/{sha256}", &sha256[..2]))
}

/// Whether `s` is a SHA-256 in lower-case hex (so it can name a path safely).
fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// Blobs in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            part_size: 5 * 1024 * 1024,
            local_root: None,
        }
    }

    /// Blobs under `dir` on the local file system (created if missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn local(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Source(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(dir)?),
            part_size: 64 * 1024,
            // Absolute, as the object store's own root is: a later change of working
            // directory must not move it.
            local_root: Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())),
        })
    }

    /// Blobs in an S3-compatible bucket. Credentials come from the usual AWS
    /// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …); `endpoint` points
    /// at a store other than AWS (MinIO, Ceph, R2, …), over plain HTTP if it says so.
    ///
    /// # Errors
    /// When the settings are incomplete.
    pub fn s3(bucket: &str, region: &str, endpoint: Option<&str>) -> Result<Self, StoreError> {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(region);
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        Ok(Self::new(Arc::new(builder.build()?)))
    }

    /// Stores what `body` yields, up to `limit` bytes, and returns its hash and size.
    /// Nothing is left visible under `blobs/` unless every byte arrived.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] as soon as `limit` is passed, [`StoreError::Empty`]
    /// for no bytes, [`StoreError::Source`] when the body fails; the staging object
    /// is removed in each case.
    pub async fn put_stream<S, E>(&self, body: S, limit: u64) -> Result<StoredBlob, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.put_watched(body, limit, &mut |_| Ok(())).await
    }

    /// [`Self::put_stream`], showing every chunk to `watch` first; a refusal is
    /// [`StoreError::Refused`] and stores nothing.
    ///
    /// # Errors
    /// As [`Self::put_stream`], and [`StoreError::Refused`].
    pub async fn put_watched<S, E>(
        &self,
        body: S,
        limit: u64,
        watch: Watch<'_>,
    ) -> Result<StoredBlob, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let staging = Path::from(format!("staging/{}", Uuid::now_v7()));
        let upload = self.store.put_multipart(&staging).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        let failure = loop {
            match body.next().await {
                None => break None,
                Some(Err(e)) => break Some(StoreError::Source(e.to_string())),
                Some(Ok(chunk)) => {
                    size += chunk.len() as u64;
                    if size > limit {
                        break Some(StoreError::TooLarge { limit });
                    }
                    if let Err(reason) = watch(Some(&chunk)) {
                        break Some(StoreError::Refused(reason));
                    }
                    hasher.update(&chunk);
                    // Bounded memory: wait while too many parts are in flight.
                    if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        break Some(e.into());
                    }
                    // Copied into the writer's own part buffer rather than kept by
                    // reference: a chunk is a slice of the connection's read buffer
                    // (hundreds of kilobytes), which would stay allocated for as long
                    // as any slice of it waits in an unsent part.
                    writer.write(&chunk);
                }
            }
        };
        let failure = failure
            .or((size == 0).then_some(StoreError::Empty))
            .or_else(|| watch(None).err().map(StoreError::Refused));
        if let Some(e) = failure {
            let _ = writer.abort().await;
            let _ = self.store.delete(&staging).await;
            return Err(e);
        }
        writer.finish().await?;
        let sha256 = hex::encode(hasher.finalize());
        let target = blob_path(&sha256);
        let new = match self.store.rename_if_not_exists(&staging, &target).await {
            Ok(()) => true,
            // Moved over the identical blob all the same: that renews its age, so the
            // orphan sweep cannot take it between now and the row that will use it.
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.store.rename(&staging, &target).await?;
                false
            }
            // Stores without an atomic rename: copying identical bytes over identical
            // bytes is harmless, since the name is the content.
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => {
                let existed = self.store.head(&target).await.is_ok();
                if !existed {
                    self.store.copy(&staging, &target).await?;
                }
                !existed
            }
            Err(e) => {
                let _ = self.store.delete(&staging).await;
                return Err(e.into());
            }
        };
        // Left behind when the blob was already there, or copied rather than moved.
        if !new || self.store.head(&staging).await.is_ok() {
            let _ = self.store.delete(&staging).await;
        }
        Ok(StoredBlob { sha256, size, new })
    }

    /// The blob's bytes as a stream.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when no such blob is stored.
    pub async fn get(
        &self,
        sha256: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, StoreError>> + use<>, StoreError> {
        if !is_sha256(sha256) {
            return Err(StoreError::Missing(sha256.to_owned()));
        }
        match self.store.get(&blob_path(sha256)).await {
            Ok(r) => Ok(r.into_stream().map_err(StoreError::from)),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::Missing(sha256.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The blob's file, opened for reading, when the store is a local directory;
    /// `None` for any other store. For a reader already on a blocking thread (the
    /// audit pack): the object store's own local reader hands out a fresh buffer for
    /// every chunk, which left the pack's peak memory a few megabytes higher and its
    /// copy twice as slow as reading the file through one reused buffer.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when no such blob is stored.
    pub fn local_file(&self, sha256: &str) -> Result<Option<std::fs::File>, StoreError> {
        let Some(root) = &self.local_root else {
            return Ok(None);
        };
        if !is_sha256(sha256) {
            return Err(StoreError::Missing(sha256.to_owned()));
        }
        match std::fs::File::open(root.join(blob_path(sha256).as_ref())) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::Missing(sha256.to_owned()))
            }
            Err(e) => Err(StoreError::Store(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })),
        }
    }

    /// The blob's size and its bytes as a stream (a backup must write the size
    /// before the bytes).
    ///
    /// # Errors
    /// [`StoreError::Missing`] when no such blob is stored.
    pub async fn open(
        &self,
        sha256: &str,
    ) -> Result<(u64, impl Stream<Item = Result<Bytes, StoreError>> + use<>), StoreError> {
        if !is_sha256(sha256) {
            return Err(StoreError::Missing(sha256.to_owned()));
        }
        match self.store.get(&blob_path(sha256)).await {
            Ok(r) => Ok((r.meta.size, r.into_stream().map_err(StoreError::from))),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::Missing(sha256.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Part of the blob (`range` in bytes, end exclusive), or all of it.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when no such blob is stored.
    pub async fn get_range(
        &self,
        sha256: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<impl Stream<Item = Result<Bytes, StoreError>> + use<>, StoreError> {
        if !is_sha256(sha256) {
            return Err(StoreError::Missing(sha256.to_owned()));
        }
        let options = object_store::GetOptions {
            range: range.map(object_store::GetRange::Bounded),
            ..Default::default()
        };
        match self.store.get_opts(&blob_path(sha256), options).await {
            Ok(r) => Ok(r.into_stream().map_err(StoreError::from)),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::Missing(sha256.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every stored blob's hash with when it was last written, for the orphan sweep.
    ///
    /// # Errors
    /// When the store cannot be listed.
    pub async fn list_blobs(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.store
            .list(Some(&Path::from("blobs")))
            .try_filter_map(|m| {
                let name = m.location.filename().unwrap_or_default().to_owned();
                futures::future::ready(Ok(is_sha256(&name).then_some((name, m.last_modified))))
            })
            .try_collect()
            .await
            .map_err(StoreError::from)
    }

    /// Removes a blob (the orphan sweep's, once no version refers to it).
    ///
    /// # Errors
    /// When the store refuses.
    pub async fn delete(&self, sha256: &str) -> Result<(), StoreError> {
        if !is_sha256(sha256) {
            return Ok(());
        }
        match self.store.delete(&blob_path(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes and removes a probe object: whether the store accepts writes now.
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let probe = Path::from(format!("staging/probe-{}", Uuid::now_v7()));
        self.store
            .put(&probe, object_store::PutPayload::from_static(b"ok"))
            .await?;
        self.store.delete(&probe).await?;
        Ok(())
    }

    /// Reads the blob again and says whether its content still has its name's hash.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when no such blob is stored.
    pub async fn verify(&self, sha256: &str) -> Result<bool, StoreError> {
        let mut stream = std::pin::pin!(self.get(sha256).await?);
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hex::encode(hasher.finalize()) == sha256)
    }

    /// Removes staging objects last written before `before`: uploads that never
    /// finished (the client went away, the process was killed). Returns how many.
    ///
    /// # Errors
    /// When the store cannot be listed.
    pub async fn sweep_staging(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let stale: Vec<Path> = self
            .store
            .list(Some(&Path::from("staging")))
            .try_filter(|m| futures::future::ready(m.last_modified < before))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for path in &stale {
            self.store.delete(path).await?;
        }
        Ok(stale.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + use<> {
        let owned: Vec<Result<Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        stream::iter(owned)
    }

    fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        walk(dir)
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.extend(walk(&p));
                } else {
                    out.push(p);
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn identical_content_is_stored_once_under_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let a = store
            .put_stream(chunks(&[b"hello ", b"auditor"]), 1_000)
            .await
            .unwrap();
        // sha256("hello auditor"), computed independently.
        assert_eq!(a.sha256, hex::encode(Sha256::digest(b"hello auditor")));
        assert_eq!(a.size, 13);
        assert!(a.new);
        let b = store
            .put_stream(chunks(&[b"hello", b" ", b"auditor"]), 1_000)
            .await
            .unwrap();
        assert_eq!(b.sha256, a.sha256);
        assert!(!b.new, "the same bytes again are not stored again");
        let files = files_under(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].ends_with(format!("blobs/{}/{}", &a.sha256[..2], a.sha256)));

        let back: Vec<Bytes> = store
            .get(&a.sha256)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(back.concat(), b"hello auditor");
        assert!(store.verify(&a.sha256).await.unwrap());

        // The same bytes through the local file.
        let mut direct = Vec::new();
        std::io::Read::read_to_end(
            &mut store.local_file(&a.sha256).unwrap().expect("a local store"),
            &mut direct,
        )
        .unwrap();
        assert_eq!(direct, b"hello auditor");
    }

    #[tokio::test]
    async fn too_large_empty_and_broken_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let err = store
            .put_stream(chunks(&[b"12345", b"67890", b"never read"]), 8)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { limit: 8 }), "{err}");
        let err = store.put_stream(chunks(&[]), 8).await.unwrap_err();
        assert!(matches!(err, StoreError::Empty), "{err}");
        let broken = stream::iter(vec![
            Ok(Bytes::from_static(b"first part")),
            Err(std::io::Error::other("client went away")),
        ]);
        let err = store.put_stream(broken, 1_000).await.unwrap_err();
        assert!(err.to_string().contains("client went away"), "{err}");
        assert_eq!(files_under(dir.path()), Vec::<std::path::PathBuf>::new());
    }

    #[tokio::test]
    async fn a_changed_blob_fails_verification_and_a_missing_one_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let blob = store
            .put_stream(chunks(&[b"signed policy"]), 1_000)
            .await
            .unwrap();
        let file = dir
            .path()
            .join(format!("blobs/{}/{}", &blob.sha256[..2], blob.sha256));
        std::fs::write(&file, b"tampered policy").unwrap();
        assert!(!store.verify(&blob.sha256).await.unwrap());
        let other = hex::encode(Sha256::digest(b"never stored"));
        assert!(matches!(
            store.verify(&other).await,
            Err(StoreError::Missing(_))
        ));
        // A name that is not a hash cannot reach outside the blob folder.
        assert!(matches!(
            store.get("../../etc/passwd").await,
            Err(StoreError::Missing(_))
        ));
        assert!(matches!(
            store.local_file("../../etc/passwd"),
            Err(StoreError::Missing(_))
        ));
        assert!(matches!(
            store.local_file(&other),
            Err(StoreError::Missing(_))
        ));
    }

    /// A local server speaking S3's wire format (moto's server mode, from PyPI) on a
    /// free port, stopped when dropped.
    struct S3Server {
        child: std::process::Child,
        endpoint: String,
    }

    impl Drop for S3Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn s3_server() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server runs the S3 tests: pip install 'moto[server]' (.ci/run does)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if client.get(&endpoint).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        S3Server { child, endpoint }
    }

    #[tokio::test]
    async fn blobs_round_trip_through_an_s3_compatible_store() {
        let server = s3_server().await;
        // Create the bucket as an operator would, over S3's own API.
        let res = reqwest::Client::new()
            .put(format!("{}/evidence", server.endpoint))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("evidence")
            .with_region("eu-west-2")
            .with_endpoint(&server.endpoint)
            .with_allow_http(true)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap();
        let store = BlobStore::new(Arc::new(store));
        let big = vec![7u8; 6 * 1024 * 1024 + 3]; // more than one 5 MiB part
        let parts: Vec<&[u8]> = big.chunks(64 * 1024).collect();
        let a = store
            .put_stream(chunks(&parts), 10 * 1024 * 1024)
            .await
            .unwrap();
        assert_eq!(a.sha256, hex::encode(Sha256::digest(&big)));
        assert_eq!(a.size, big.len() as u64);
        assert!(a.new);
        let b = store
            .put_stream(chunks(&parts), 10 * 1024 * 1024)
            .await
            .unwrap();
        assert!(!b.new, "stored once");
        assert!(store.verify(&a.sha256).await.unwrap());
        assert!(
            store.local_file(&a.sha256).unwrap().is_none(),
            "no local file for a remote store: readers stream it"
        );
        let err = store.put_stream(chunks(&parts), 1024).await.unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }));
        // Nothing left in staging by the finished, duplicate or refused uploads.
        assert_eq!(
            store
                .sweep_staging(Utc::now() + chrono::Duration::hours(1))
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn the_sweeper_removes_abandoned_staging_objects_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let kept = store.put_stream(chunks(&[b"kept"]), 100).await.unwrap();
        // What a killed process leaves: a staging object and no blob.
        std::fs::create_dir_all(dir.path().join("staging")).unwrap();
        std::fs::write(dir.path().join("staging/abandoned"), b"half an upl").unwrap();
        assert_eq!(
            store
                .sweep_staging(Utc::now() - chrono::Duration::hours(1))
                .await
                .unwrap(),
            0,
            "too recent: it could still be in flight"
        );
        assert_eq!(
            store
                .sweep_staging(Utc::now() + chrono::Duration::seconds(1))
                .await
                .unwrap(),
            1
        );
        assert!(!dir.path().join("staging/abandoned").exists());
        assert!(store.verify(&kept.sha256).await.unwrap());
    }
}
