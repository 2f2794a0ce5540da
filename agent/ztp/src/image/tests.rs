use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Bytes that differ at every offset, so a misplaced chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

fn image(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn range(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(RANGE, HeaderValue::from_str(value).unwrap());
    headers
}

fn no_progress() -> Progress {
    Box::new(|_, _| {})
}

async fn body_bytes(resp: Response<ResponseBody>) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

#[test]
fn range_choices() {
    let v = |s: &str| HeaderValue::from_str(s).unwrap();
    let full = RangeChoice::Full;
    let part = |start, end| RangeChoice::Partial { start, end };
    let cases: &[(Option<&str>, u64, RangeChoice)] = &[
        (None, 100, full),
        (Some("bytes=0-9"), 100, part(0, 10)),
        (Some("bytes=90-"), 100, part(90, 100)),
        (Some("bytes=-10"), 100, part(90, 100)),
        // A suffix longer than the file selects all of it.
        (Some("bytes=-1000"), 100, part(0, 100)),
        // An end past the file is cut at the file's end.
        (Some("bytes=50-1000"), 100, part(50, 100)),
        (Some("bytes=99-99"), 100, part(99, 100)),
        (Some("BYTES=1-2"), 100, part(1, 3)),
        // curl -C - on a complete file asks for one byte past the end.
        (Some("bytes=100-"), 100, RangeChoice::Unsatisfiable),
        (Some("bytes=200-300"), 100, RangeChoice::Unsatisfiable),
        (Some("bytes=-0"), 100, RangeChoice::Unsatisfiable),
        // Several ranges: ignored, the whole image.
        (Some("bytes=0-1,5-6"), 100, full),
        // Not understood: ignored.
        (Some("bytes=5-1"), 100, full),
        (Some("items=0-1"), 100, full),
        (Some("bytes=a-b"), 100, full),
        (Some("bytes="), 100, full),
        (Some("bytes=0-1,"), 100, part(0, 2)),
        (
            Some("bytes=99999999999999999999999-"),
            100,
            RangeChoice::Unsatisfiable,
        ),
        (Some("bytes=0-99999999999999999999999"), 100, part(0, 100)),
        // RFC 9110: on an empty file only a suffix range is satisfiable.
        (Some("bytes=0-"), 0, RangeChoice::Unsatisfiable),
        (Some("bytes=-5"), 0, full),
    ];
    for (header, size, want) in cases {
        let got = select_range(header.map(v).as_ref(), *size);
        assert_eq!(got, *want, "Range {header:?} on {size} bytes");
    }
    let not_text = HeaderValue::from_bytes(b"bytes=\xff-1").unwrap();
    assert_eq!(select_range(Some(&not_text), 100), full);
}

#[test]
fn digest_is_sha256_and_cached_by_size_and_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let first = pattern(3 * 1024 * 1024 + 17, 1);
    let path = image(&dir, "EOS-4.33.2F.swi", &first);
    let store = ImageStore::new(path.clone(), "4.33.2F".into(), 2);
    rt().block_on(async {
        let d = store.digest().await.unwrap();
        assert_eq!(d.size, first.len() as u64);
        assert_eq!(d.file_name, "EOS-4.33.2F.swi");
        assert_eq!(d.sha256_hex, hex(&Sha256::digest(&first)));
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();

        // Same size, same mtime, same inode: the cache answers (the old sum).
        let second = pattern(first.len(), 2);
        std::fs::write(&path, &second).unwrap();
        set_mtime(&path, mtime);
        assert_eq!(store.digest().await.unwrap(), d);

        // A new mtime: recomputed.
        let later = mtime + Duration::from_secs(10);
        set_mtime(&path, later);
        let d2 = store.digest().await.unwrap();
        assert_eq!(d2.sha256_hex, hex(&Sha256::digest(&second)));

        // A new size: recomputed.
        std::fs::write(&path, b"short").unwrap();
        set_mtime(&path, later);
        let d3 = store.digest().await.unwrap();
        assert_eq!(
            (d3.size, d3.sha256_hex),
            (5, hex(&Sha256::digest(b"short")))
        );

        // Concurrent callers all get the one answer.
        let all = futures_join(&store, 8).await;
        assert!(all.iter().all(|d| *d == all[0]));
    });
}

async fn futures_join(store: &ImageStore, n: usize) -> Vec<ImageDigest> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.digest().await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn set_mtime(path: &Path, mtime: SystemTime) {
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(mtime).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn digest_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let missing = ImageStore::new(dir.path().join("EOS.swi"), "4.33.2F".into(), 1);
        let e = missing.digest().await.unwrap_err();
        assert!(matches!(e, ImageError::Open { .. }), "{e:?}");
        assert!(e.to_string().contains("EOS.swi"), "{e}");

        for bad in [
            "EOS 4.swi",
            "EOS';reboot;'.swi",
            ".hidden.swi",
            "-rf.swi",
            "EOS$(x).swi",
        ] {
            let path = image(&dir, bad, b"x");
            let e = ImageStore::new(path, "v".into(), 1)
                .digest()
                .await
                .unwrap_err();
            assert!(matches!(e, ImageError::BadFileName { .. }), "{bad}: {e:?}");
        }

        let e = ImageStore::new(dir.path().to_owned(), "v".into(), 1)
            .digest()
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ImageError::NotAFile { .. }
                    | ImageError::Read { .. }
                    | ImageError::BadFileName { .. }
            ),
            "{e:?}"
        );
    });
}

#[test]
fn full_image_with_headers_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let content = pattern(5 * CHUNK + 12345, 3);
    let store = ImageStore::new(image(&dir, "EOS.swi", &content), "v".into(), 1);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let progress: Progress = {
        let calls = calls.clone();
        Box::new(move |sent, total| calls.lock().unwrap().push((sent, total)))
    };
    rt().block_on(async {
        let resp = store.respond(&HeaderMap::new(), progress).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[CONTENT_TYPE], "application/octet-stream");
        assert_eq!(h[CONTENT_LENGTH], content.len().to_string().as_str());
        assert_eq!(h["accept-ranges"], "bytes");
        assert!(h.get(CONTENT_RANGE).is_none());
        assert_eq!(body_bytes(resp).await, content);
    });
    let calls = calls.lock().unwrap();
    let total = content.len() as u64;
    assert_eq!(calls.last(), Some(&(total, total)), "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "{calls:?}");
    assert!(calls.iter().all(|&(sent, t)| t == total && sent <= total));
    // Throttled: about one call per MiB, not one per chunk.
    assert!(
        calls.len() <= (total / PROGRESS_EVERY) as usize + 1,
        "{calls:?}"
    );
}

#[test]
fn ranges_answer_206_and_416() {
    let dir = tempfile::tempdir().unwrap();
    let content = pattern(3 * CHUNK + 7, 4);
    let size = content.len();
    let store = ImageStore::new(image(&dir, "EOS.swi", &content), "v".into(), 4);
    rt().block_on(async {
        for (header, start, end) in [
            (format!("bytes={}-", CHUNK - 1), CHUNK - 1, size),
            ("bytes=10-20".to_string(), 10, 21),
            ("bytes=-5".to_string(), size - 5, size),
        ] {
            let last = Arc::new(AtomicU64::new(0));
            let progress: Progress = {
                let last = last.clone();
                Box::new(move |sent, _| last.store(sent, Ordering::SeqCst))
            };
            let resp = store.respond(&range(&header), progress).await;
            assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{header}");
            let want_range = format!("bytes {start}-{}/{size}", end - 1);
            assert_eq!(resp.headers()[CONTENT_RANGE], want_range.as_str());
            assert_eq!(
                resp.headers()[CONTENT_LENGTH],
                (end - start).to_string().as_str()
            );
            assert_eq!(body_bytes(resp).await, content[start..end], "{header}");
            // Progress is a position in the file, so a resumed download ends at the size.
            assert_eq!(last.load(Ordering::SeqCst), end as u64, "{header}");
        }
        let resp = store
            .respond(&range(&format!("bytes={size}-")), no_progress())
            .await;
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            resp.headers()[CONTENT_RANGE],
            format!("bytes */{size}").as_str()
        );

        let resp = store.respond(&range("bytes=0-1,4-5"), no_progress()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body_bytes(resp).await, content);
    });
}

#[test]
fn cap_answers_503_and_a_dropped_body_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let content = pattern(4 * CHUNK, 5);
    let store = ImageStore::new(image(&dir, "EOS.swi", &content), "v".into(), 2)
        .with_retry_after(Duration::from_secs(7));
    rt().block_on(async {
        let first = store.respond(&HeaderMap::new(), no_progress()).await;
        let mut second = store.respond(&range("bytes=5-"), no_progress()).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(second.status(), StatusCode::PARTIAL_CONTENT);

        let busy = store.respond(&HeaderMap::new(), no_progress()).await;
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[RETRY_AFTER], "7");
        // A 416 needs no slot and is still answered at the cap.
        let past = store
            .respond(&range("bytes=99999999-"), no_progress())
            .await;
        assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);

        // A client that goes away part way: hyper drops the body.
        let frame = second.body_mut().frame().await.unwrap().unwrap();
        assert!(!frame.into_data().unwrap().is_empty());
        drop(second);
        let third = store.respond(&HeaderMap::new(), no_progress()).await;
        assert_eq!(third.status(), StatusCode::OK);
        assert_eq!(
            store
                .respond(&HeaderMap::new(), no_progress())
                .await
                .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );

        // Finished downloads free their slots too.
        assert_eq!(body_bytes(first).await, content);
        assert_eq!(body_bytes(third).await, content);
        let again = store.respond(&HeaderMap::new(), no_progress()).await;
        let again2 = store.respond(&HeaderMap::new(), no_progress()).await;
        assert_eq!(
            (again.status(), again2.status()),
            (StatusCode::OK, StatusCode::OK)
        );
    });
}

#[test]
fn missing_image_is_500_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().join("gone.swi"), "v".into(), 1);
    rt().block_on(async {
        let resp = store.respond(&HeaderMap::new(), no_progress()).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // The failed request took no slot.
        std::fs::write(dir.path().join("gone.swi"), b"abc").unwrap();
        let resp = store.respond(&HeaderMap::new(), no_progress()).await;
        assert_eq!(body_bytes(resp).await, b"abc");
    });
}

#[test]
fn empty_image_is_an_empty_200() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(image(&dir, "EOS.swi", b""), "v".into(), 1);
    rt().block_on(async {
        let resp = store.respond(&HeaderMap::new(), no_progress()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_LENGTH], "0");
        assert!(body_bytes(resp).await.is_empty());
    });
}

#[test]
fn an_image_not_in_the_page_cache_is_read_on_the_blocking_pool() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let content = pattern(2 * CHUNK + 99, 6);
    let path = image(&dir, "EOS.swi", &content);
    let file = File::open(&path).unwrap();
    file.sync_all().unwrap();
    // Evict the (clean) pages, so RWF_NOWAIT finds nothing and the read blocks.
    // SAFETY: a plain advisory call on an open descriptor.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    let mut probe = vec![0u8; 4096];
    let cached = read_cached(&file, &mut probe, CHUNK as u64);
    if let Some(r) = cached {
        // A filesystem that keeps everything in memory (tmpfs) has no disk to wait for.
        assert_eq!(r.unwrap(), 4096);
    }
    let store = ImageStore::new(path, "v".into(), 1);
    rt().block_on(async {
        let resp = store.respond(&HeaderMap::new(), no_progress()).await;
        assert_eq!(body_bytes(resp).await, content);
    });
}
