//! The EOS image: its sha256 (computed once per file) and `GET /ztp/image`.
//!
//! Serving is built for many leaves upgrading at once from a switch's flash:
//!
//! - The body is read one [`CHUNK`] at a time, the next chunk read while
//!   hyper writes the previous one. A chunk already in the page cache (the
//!   usual case: 16 leaves fetch the same image) is read in place with
//!   `preadv2(RWF_NOWAIT)`, which never waits for the disk; only a chunk that
//!   must come from flash goes to the blocking pool. That saves two thread
//!   hand-offs per chunk, most of the CPU a download costs beyond the copies.
//!   Two chunk buffers per download are recycled (a small pool per body), so
//!   a download costs a constant ~0.5 MiB whatever the image size, and no
//!   allocation per chunk.
//! - A download holds a slot of a semaphore sized `max_downloads`; the slot is
//!   part of the body, so it is released when hyper drops the body: at the end
//!   or when the client goes away. Past the cap a request gets 503 with
//!   `Retry-After` before any file is read.
//! - `Range: bytes=a-b | a- | -n` (one range) answers 206, so a leaf resumes
//!   an interrupted download. A header naming several ranges is ignored and
//!   the whole image is sent with 200 (RFC 9110 §14.2 lets a server ignore
//!   Range; nothing needs multipart/byteranges here). A syntactically invalid
//!   header is ignored the same way. A range starting past the end is 416 with
//!   `Content-Range: bytes */size`.
//! - The sha256 is cached by (path, size, mtime, inode): replacing or touching
//!   the file recomputes it. Hashing runs on the blocking pool under an async
//!   lock, so concurrent callers wait for the one computation and share it.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER,
};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::ResponseBody;

/// Bytes read from flash per `pread` and handed to hyper per frame.
pub const CHUNK: usize = 256 * 1024;

/// How often (in bytes sent) the progress callback is called, besides at the end.
pub const PROGRESS_EVERY: u64 = 1024 * 1024;

/// `Retry-After` sent with 503 when every download slot is taken.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The callback told how far a download is: (position in the file, file size).
pub type Progress = Box<dyn Fn(u64, u64) + Send + Sync>;

/// The EOS image this spine offers, shared by every connection (cheap to clone).
#[derive(Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

struct Inner {
    file: PathBuf,
    version: String,
    max_downloads: usize,
    slots: Arc<Semaphore>,
    retry_after: Duration,
    digest: tokio::sync::Mutex<Option<CachedDigest>>,
}

struct CachedDigest {
    key: FileKey,
    digest: ImageDigest,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("file", &self.inner.file)
            .field("version", &self.inner.version)
            .field("max_downloads", &self.inner.max_downloads)
            .finish_non_exhaustive()
    }
}

/// Two stores are equal when they serve the same file as the same version
/// under the same limits (what a config reload compares).
impl PartialEq for ImageStore {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.inner, &other.inner);
        a.file == b.file
            && a.version == b.version
            && a.max_downloads == b.max_downloads
            && a.retry_after == b.retry_after
    }
}

impl Eq for ImageStore {}

/// What identifies one version of the image file: if any of it changes, the
/// cached digest is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: SystemTime,
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> io::Result<FileKey> {
        Ok(FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.modified()?,
        })
    }
}

/// The image as the upgrade script needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDigest {
    /// Lower-case hex sha256 of the whole file.
    pub sha256_hex: String,
    /// File size in bytes.
    pub size: u64,
    /// The file's name, only `[A-Za-z0-9._-]`: it goes into boot-config and a script.
    pub file_name: String,
}

/// Why the image cannot be hashed or served.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file cannot be opened or its metadata read.
    #[error("cannot open the EOS image {path}: {source}")]
    Open {
        /// The configured `ztp.image.file`.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// Reading failed part way.
    #[error("cannot read the EOS image {path}: {source}")]
    Read {
        /// The configured `ztp.image.file`.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// The path is a directory or a device, not a regular file.
    #[error("the EOS image {path} is not a regular file")]
    NotAFile {
        /// The configured `ztp.image.file`.
        path: PathBuf,
    },
    /// The name cannot go into boot-config and a shell script as is.
    #[error(
        "the EOS image file name in {path} must be letters, digits, '.', '_' and '-' \
         and not start with '.' or '-' (it is written to the leaf's boot-config)"
    )]
    BadFileName {
        /// The configured `ztp.image.file`.
        path: PathBuf,
    },
    /// The file changed while it was being hashed (it is being copied to flash).
    #[error(
        "the EOS image {path} changed while its sha256 was computed; try again once it is complete"
    )]
    ChangedWhileHashing {
        /// The configured `ztp.image.file`.
        path: PathBuf,
    },
}

impl ImageStore {
    /// An image at `file`, of EOS `version`, streamed to at most `max_downloads`
    /// leaves at once (0 is taken as 1). Nothing is read until it is needed.
    pub fn new(file: PathBuf, version: String, max_downloads: usize) -> ImageStore {
        ImageStore {
            inner: Arc::new(Inner {
                file,
                version,
                max_downloads: max_downloads.max(1),
                slots: Arc::new(Semaphore::new(max_downloads.max(1))),
                retry_after: DEFAULT_RETRY_AFTER,
                digest: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The same store with another `Retry-After` for 503 (whole seconds, at least 1).
    pub fn with_retry_after(self, retry_after: Duration) -> ImageStore {
        let inner = Inner {
            file: self.inner.file.clone(),
            version: self.inner.version.clone(),
            max_downloads: self.inner.max_downloads,
            slots: self.inner.slots.clone(),
            retry_after: retry_after.max(Duration::from_secs(1)),
            digest: tokio::sync::Mutex::new(None),
        };
        ImageStore {
            inner: Arc::new(inner),
        }
    }

    /// The EOS version the image holds (`ztp.image.version`).
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The image file's path.
    pub fn file(&self) -> &Path {
        &self.inner.file
    }

    /// How many leaves may download at once.
    pub fn max_downloads(&self) -> usize {
        self.inner.max_downloads
    }

    /// The image's sha256, size and file name. Computed once per version of the
    /// file (path, size, mtime, inode) on the blocking pool; concurrent callers
    /// wait for that one computation.
    pub async fn digest(&self) -> Result<ImageDigest, ImageError> {
        let mut cached = self.inner.digest.lock().await;
        let path = self.inner.file.clone();
        let key = {
            let path = path.clone();
            run_blocking(move || {
                let meta = std::fs::metadata(&path).map_err(|source| ImageError::Open {
                    path: path.clone(),
                    source,
                })?;
                FileKey::of(&meta).map_err(|source| ImageError::Open { path, source })
            })
            .await?
        };
        if let Some(c) = cached.as_ref().filter(|c| c.key == key) {
            return Ok(c.digest.clone());
        }
        let (key, digest) = run_blocking(move || hash_file(&path)).await?;
        tracing::info!(
            file = %self.inner.file.display(),
            size = digest.size,
            sha256 = %digest.sha256_hex,
            "EOS image hashed"
        );
        *cached = Some(CachedDigest {
            key,
            digest: digest.clone(),
        });
        Ok(digest)
    }

    /// The whole `GET /ztp/image` response (see the module docs). `progress` is
    /// called with (position in the file, file size) every [`PROGRESS_EVERY`]
    /// bytes and when the last byte of the response has been handed to hyper.
    pub async fn respond(
        &self,
        req_headers: &HeaderMap,
        progress: Progress,
    ) -> Response<ResponseBody> {
        let path = self.inner.file.clone();
        let opened = run_blocking(move || open_image(&path)).await;
        let (file, size) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!("{e}");
                return text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the EOS image cannot be read\n",
                );
            }
        };
        let (status, start, end) = match select_range(req_headers.get(RANGE), size) {
            RangeChoice::Full => (StatusCode::OK, 0, size),
            RangeChoice::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
            RangeChoice::Unsatisfiable => {
                let mut resp = text_response(StatusCode::RANGE_NOT_SATISFIABLE, "");
                resp.headers_mut()
                    .insert(CONTENT_RANGE, header_value(format!("bytes */{size}")));
                return resp;
            }
        };
        let Ok(slot) = self.inner.slots.clone().try_acquire_owned() else {
            let secs = self.inner.retry_after.as_secs();
            let mut resp = text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many leaves are downloading the image; retry later\n",
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        };
        let body = ImageBody::new(file, start, end, size, progress, slot);
        let mut resp = Response::new(body.boxed());
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if status == StatusCode::PARTIAL_CONTENT {
            let last = end - 1;
            headers.insert(
                CONTENT_RANGE,
                header_value(format!("bytes {start}-{last}/{size}")),
            );
        }
        resp
    }
}

/// What a request's `Range` header selects from a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeChoice {
    /// No usable Range header (absent, invalid, or several ranges): 200, all of it.
    Full,
    /// One satisfiable range, `start..end` (end exclusive, never past the size): 206.
    Partial {
        /// First byte sent.
        start: u64,
        /// One past the last byte sent.
        end: u64,
    },
    /// The range starts past the end of the file (or is `-0`): 416.
    Unsatisfiable,
}

/// Decides what to send for `Range` (see the module docs for the choices).
pub fn select_range(range: Option<&HeaderValue>, size: u64) -> RangeChoice {
    use http_range_header::RangeUnsatisfiableError;
    let Some(text) = range.and_then(|v| v.to_str().ok()) else {
        return RangeChoice::Full;
    };
    let one = std::num::NonZeroUsize::MIN;
    let parsed = match http_range_header::parse_range_header_with_max_ranges(text, one) {
        Ok(parsed) => parsed,
        // Several ranges, or not a byte-range header we understand: ignore it.
        Err(_) => return RangeChoice::Full,
    };
    match parsed.validate(size).as_deref() {
        Ok([range]) => RangeChoice::Partial {
            start: *range.start(),
            end: range.end() + 1,
        },
        // An empty file: nothing to select from, send the (empty) whole.
        Ok(_) => RangeChoice::Full,
        Err(RangeUnsatisfiableError::Unsatisfiable) => RangeChoice::Unsatisfiable,
        Err(_) => RangeChoice::Full,
    }
}

fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("digits, spaces, '-', '/' and '*' are valid in a header")
}

fn text_response(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let body = http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    resp
}

async fn run_blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    match tokio::task::spawn_blocking(job).await {
        Ok(result) => result,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

fn open_image(path: &Path) -> Result<(File, u64), ImageError> {
    let open_error = |source| ImageError::Open {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(open_error)?;
    let meta = file.metadata().map_err(open_error)?;
    if !meta.is_file() {
        return Err(ImageError::NotAFile {
            path: path.to_owned(),
        });
    }
    Ok((file, meta.len()))
}

/// Whether `name` can go into boot-config and a shell script unquoted.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn hash_file(path: &Path) -> Result<(FileKey, ImageDigest), ImageError> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| is_safe_file_name(n))
        .ok_or_else(|| ImageError::BadFileName {
            path: path.to_owned(),
        })?
        .to_owned();
    let (file, _) = open_image(path)?;
    let read_error = |source| ImageError::Read {
        path: path.to_owned(),
        source,
    };
    let before = FileKey::of(&file.metadata().map_err(read_error)?).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read_at(&mut buf, size).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let after = FileKey::of(&file.metadata().map_err(read_error)?).map_err(read_error)?;
    if before != after || size != after.size {
        return Err(ImageError::ChangedWhileHashing {
            path: path.to_owned(),
        });
    }
    let sha256_hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((
        after,
        ImageDigest {
            sha256_hex,
            size,
            file_name,
        },
    ))
}

/// Chunk buffers handed back by hyper once written, for the next `pread`.
/// At most two are kept, so a body never holds more than a few chunks.
type BufferPool = Arc<Mutex<Vec<Vec<u8>>>>;

/// A chunk buffer that returns to its body's pool when hyper drops it.
struct PooledChunk {
    buf: Vec<u8>,
    len: usize,
    pool: BufferPool,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < 2 {
                pool.push(buf);
            }
        }
    }
}

type ReadResult = (Vec<u8>, io::Result<usize>);

/// A chunk being read: already there (page cache), or on the blocking pool.
enum PendingRead {
    Ready(Option<ReadResult>),
    Blocking(JoinHandle<ReadResult>),
}

/// Cleared at the first kernel that refuses `RWF_NOWAIT` (older than 4.14).
static NOWAIT_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Reads at `offset` only what the page cache already holds, never waiting
/// for the disk: `Some(n)` (possibly short), or `None` when the data is not
/// cached (or the kernel cannot tell) and the read must block.
fn read_cached(file: &File, buf: &mut [u8], offset: u64) -> Option<io::Result<usize>> {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering;
    if !NOWAIT_WORKS.load(Ordering::Relaxed) {
        return None;
    }
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // The raw syscall, so it builds the same on glibc and musl, 32 and 64 bit:
    // the offset goes as (low, high) words; a 64-bit kernel ignores `high`.
    // SAFETY: `iov` describes `buf`, which outlives the call and is writable.
    let n = unsafe {
        libc::syscall(
            libc::SYS_preadv2,
            file.as_raw_fd() as libc::c_long,
            &iov as *const libc::iovec,
            1 as libc::c_long,
            offset as libc::c_ulong,
            (offset >> 32) as libc::c_ulong,
            libc::RWF_NOWAIT as libc::c_long,
        )
    };
    if n > 0 {
        return Some(Ok(n as usize));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // Not cached (EAGAIN), or a 0-byte answer we let the blocking read confirm.
        _ if n == 0 => None,
        Some(libc::EAGAIN) => None,
        Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS) => {
            NOWAIT_WORKS.store(false, Ordering::Relaxed);
            None
        }
        _ => Some(Err(err)),
    }
}

/// The streamed image: `start..end` of `file`, read ahead one chunk.
struct ImageBody {
    file: Arc<File>,
    /// Next byte to hand to hyper.
    sent: u64,
    /// Next byte to read (one chunk ahead of `sent` while a read is pending).
    next_read: u64,
    end: u64,
    size: u64,
    pending: Option<PendingRead>,
    pool: BufferPool,
    progress: Progress,
    last_report: u64,
    /// Held for as long as the body lives; dropping it frees a download slot.
    _slot: OwnedSemaphorePermit,
}

impl ImageBody {
    fn new(
        file: File,
        start: u64,
        end: u64,
        size: u64,
        progress: Progress,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        let mut body = ImageBody {
            file: Arc::new(file),
            sent: start,
            next_read: start,
            end,
            size,
            pending: None,
            pool: Arc::new(Mutex::new(Vec::with_capacity(2))),
            progress,
            last_report: start,
            _slot: slot,
        };
        body.start_read();
        body
    }

    /// Starts reading the next chunk on the blocking pool, if any is left.
    fn start_read(&mut self) {
        if self.next_read >= self.end || self.pending.is_some() {
            return;
        }
        let len = (self.end - self.next_read).min(CHUNK as u64) as usize;
        let offset = self.next_read;
        let reused = self.pool.lock().ok().and_then(|mut pool| pool.pop());
        let mut buf = reused.unwrap_or_else(|| vec![0u8; CHUNK]);
        self.pending = Some(match read_cached(&self.file, &mut buf[..len], offset) {
            Some(result) => PendingRead::Ready(Some((buf, result))),
            None => {
                let file = self.file.clone();
                PendingRead::Blocking(tokio::task::spawn_blocking(move || {
                    let result = file.read_at(&mut buf[..len], offset);
                    (buf, result)
                }))
            }
        });
        self.next_read += len as u64;
    }

    fn report(&mut self) {
        if self.sent == self.end || self.sent - self.last_report >= PROGRESS_EVERY {
            self.last_report = self.sent;
            (self.progress)(self.sent, self.size);
        }
    }
}

impl Body for ImageBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let Some(pending) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let (buf, result) = match pending {
            PendingRead::Ready(done) => done.take().expect("a ready read is taken once"),
            PendingRead::Blocking(handle) => {
                ready!(Pin::new(handle).poll(cx)).map_err(io::Error::other)?
            }
        };
        this.pending = None;
        let n = result?;
        if n == 0 {
            // The file was cut short after we sent Content-Length: abort the
            // connection rather than send fewer bytes than promised.
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the EOS image became shorter while it was being sent",
            ))));
        }
        // A short read (n < requested) is fine: the next read continues at `sent`.
        this.next_read = this.sent + n as u64;
        this.sent += n as u64;
        let chunk = Bytes::from_owner(PooledChunk {
            buf,
            len: n,
            pool: this.pool.clone(),
        });
        this.start_read();
        this.report();
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end - self.sent)
    }
}

impl Drop for ImageBody {
    fn drop(&mut self) {
        if self.sent < self.end {
            tracing::debug!(
                sent = self.sent,
                end = self.end,
                "image download ended early"
            );
        }
    }
}

#[cfg(test)]
mod tests;
