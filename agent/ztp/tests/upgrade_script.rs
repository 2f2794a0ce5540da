//! The rendered upgrade script, run by real bash and curl against `ImageStore`
//! behind a small hyper server on 127.0.0.1, with a temp dir standing in for
//! `/mnt/flash`. (The namespace e2e tests run it on leaves against the daemon.)

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use ztps_ztp::image::{ImageDigest, ImageStore};
use ztps_ztp::script::{render, UpgradeScript};
use ztps_ztp::ResponseBody;

const CONFIG: &str = "hostname leaf3\n";
const SERIAL: &str = "JPE20000003";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    range: Option<String>,
    serial: Option<String>,
    status: u16,
    /// For POST /ztp/status: (stage, message).
    report: Option<(String, String)>,
}

#[derive(Clone)]
struct Server {
    store: ImageStore,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Cut the first image response after this many bytes (an interrupted download).
    cut_first_after: Option<u64>,
}

impl Server {
    async fn handle(self, req: Request<Incoming>) -> Result<Response<ResponseBody>, Infallible> {
        let (parts, body) = req.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let mut seen = Seen {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            range: header("range"),
            serial: header("x-arista-serial"),
            status: 0,
            report: None,
        };
        let resp = match (parts.method.clone(), parts.uri.path()) {
            (Method::GET, "/ztp/image") => {
                let first = !self
                    .seen
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|s| s.path == "/ztp/image");
                let resp = self
                    .store
                    .respond(&parts.headers, Box::new(|_, _| {}))
                    .await;
                match self.cut_first_after {
                    Some(limit) if first => resp.map(|b| cut_after(b, limit)),
                    _ => resp,
                }
            }
            (Method::GET, "/ztp/config") => full(StatusCode::OK, CONFIG.as_bytes().to_vec()),
            (Method::POST, "/ztp/status") => {
                let bytes = body.collect().await.unwrap().to_bytes();
                let json: serde_json::Value =
                    serde_json::from_slice(&bytes).expect("status body is JSON");
                seen.report = Some((
                    json["stage"].as_str().unwrap().to_owned(),
                    json["message"].as_str().unwrap().to_owned(),
                ));
                full(StatusCode::NO_CONTENT, Vec::new())
            }
            _ => full(StatusCode::NOT_FOUND, Vec::new()),
        };
        seen.status = resp.status().as_u16();
        self.seen.lock().unwrap().push(seen);
        Ok(resp)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn reports(&self) -> Vec<(String, String)> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == Method::POST)
            .filter_map(|s| s.report)
            .collect()
    }

    fn image_requests(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path == "/ztp/image")
            .collect()
    }
}

fn full(status: StatusCode, body: Vec<u8>) -> Response<ResponseBody> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).map_err(|n| match n {}).boxed());
    *resp.status_mut() = status;
    resp
}

/// A body that fails once `limit` bytes are out, so hyper aborts the
/// connection part way: an interrupted download.
struct CutBody {
    inner: ResponseBody,
    sent: u64,
    limit: u64,
}

impl http_body::Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if self.sent >= self.limit {
            return Poll::Ready(Some(Err(std::io::Error::other("cut by the test"))));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            self.sent += n;
        }
        polled
    }
}

fn cut_after(inner: ResponseBody, limit: u64) -> ResponseBody {
    CutBody {
        inner,
        sent: 0,
        limit,
    }
    .boxed()
}

/// The server on 127.0.0.1, a flash dir, and the image.
struct Lab {
    server: Server,
    base_url: String,
    flash: tempfile::TempDir,
    _images: tempfile::TempDir,
    image: Vec<u8>,
    digest: ImageDigest,
}

/// Bytes that differ at every offset, so a misplaced range shows.
fn image_bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(b"ztps test image");
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(len);
    out
}

async fn lab(max_downloads: usize, cut_first_after: Option<u64>) -> Lab {
    let images = tempfile::tempdir().unwrap();
    let image = image_bytes(3 * 1024 * 1024 + 4321);
    let path: PathBuf = images.path().join("EOS-4.33.2F.swi");
    std::fs::write(&path, &image).unwrap();
    let store = ImageStore::new(path, "4.33.2F".into(), max_downloads)
        .with_retry_after(Duration::from_secs(1));
    let digest = store.digest().await.unwrap();
    let server = Server {
        store,
        seen: Arc::default(),
        cut_first_after,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let accept = server.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let server = accept.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| server.clone().handle(req));
                // Cut connections end in an error here; that is the point of them.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Lab {
        server,
        base_url,
        flash: tempfile::tempdir().unwrap(),
        _images: images,
        image,
        digest,
    }
}

impl Lab {
    fn script(&self, digest: &ImageDigest) -> String {
        let script = render(&UpgradeScript {
            base_url: &self.base_url,
            image: digest,
            serial: Some(SERIAL),
            version: "4.33.2F",
        });
        let flash = format!("\nFLASH='{}'\n", self.flash.path().display());
        assert!(script.contains("\nFLASH=/mnt/flash\n"));
        script.replacen("\nFLASH=/mnt/flash\n", &flash, 1)
    }

    /// Runs the script with bash; (exit code, stdout + stderr).
    async fn run(&self, script: &str) -> (i32, String) {
        let file = self.flash.path().join("..").join(format!(
            "ztps-upgrade-{}.sh",
            self.flash.path().file_name().unwrap().to_str().unwrap()
        ));
        std::fs::write(&file, script).unwrap();
        let child = tokio::process::Command::new("bash")
            .arg(&file)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), child)
            .await
            .expect("the script finishes within 120 s")
            .unwrap();
        std::fs::remove_file(&file).unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn flash(&self, name: &str) -> PathBuf {
        self.flash.path().join(name)
    }

    fn assert_installed(&self, out: &str) {
        let installed = std::fs::read(self.flash("EOS-4.33.2F.swi")).unwrap_or_default();
        assert!(
            installed == self.image,
            "image on flash differs from the served one:\n{out}"
        );
        assert!(!self.flash("EOS-4.33.2F.swi.part").exists(), "{out}");
        assert_eq!(
            std::fs::read_to_string(self.flash("boot-config")).unwrap(),
            "SWI=flash:EOS-4.33.2F.swi\n"
        );
        assert_eq!(
            std::fs::read_to_string(self.flash("startup-config")).unwrap(),
            CONFIG
        );
        let names: Vec<_> = std::fs::read_dir(self.flash.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            3,
            "only image, boot-config and startup-config: {names:?}"
        );
    }

    fn assert_nothing_left(&self, out: &str) {
        let names: Vec<_> = std::fs::read_dir(self.flash.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.is_empty(),
            "flash should be as before, has {names:?}:\n{out}"
        );
    }
}

fn stages(reports: &[(String, String)]) -> Vec<&str> {
    reports.iter().map(|(s, _)| s.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_installs_image_boot_config_and_config() {
    let lab = lab(8, None).await;
    let (code, out) = lab.run(&lab.script(&lab.digest)).await;
    assert_eq!(code, 0, "{out}");
    lab.assert_installed(&out);
    assert_eq!(
        stages(&lab.server.reports()),
        ["image", "image-done"],
        "{out}"
    );
    let seen = lab.server.seen();
    assert!(
        seen.iter().all(|s| s.serial.as_deref() == Some(SERIAL)),
        "serial on every request: {seen:?}"
    );
    let images = lab.server.image_requests();
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].status, 200);
    assert!(seen
        .iter()
        .any(|s| s.path == "/ztp/config" && s.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_a_partial_image_left_on_flash() {
    let lab = lab(8, None).await;
    let have = lab.image.len() / 3;
    std::fs::write(lab.flash("EOS-4.33.2F.swi.part"), &lab.image[..have]).unwrap();
    let (code, out) = lab.run(&lab.script(&lab.digest)).await;
    assert_eq!(code, 0, "{out}");
    lab.assert_installed(&out);
    let images = lab.server.image_requests();
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(
        images[0].range.as_deref(),
        Some(format!("bytes={have}-").as_str())
    );
    assert_eq!(images[0].status, 206);
    assert!(
        out.contains(&format!("resuming EOS-4.33.2F.swi at byte {have} of")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_the_connection_drops() {
    // Cut after 2 MiB of the 3 MiB image were handed to hyper; some of that is
    // still in hyper's buffer when the connection drops, so the leaf has less.
    let lab = lab(8, Some(2 * 1024 * 1024)).await;
    let (code, out) = lab.run(&lab.script(&lab.digest)).await;
    assert_eq!(code, 0, "{out}");
    lab.assert_installed(&out);
    let images = lab.server.image_requests();
    assert_eq!(images.len(), 2, "{images:?}\n{out}");
    assert_eq!(images[0].range, None);
    let resumed_at: u64 = images[1]
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("second request resumes: {images:?}"));
    assert!(
        resumed_at >= 1024 * 1024 && resumed_at < lab.image.len() as u64,
        "{resumed_at}"
    );
    assert_eq!(images[1].status, 206);
    assert!(out.contains("resuming"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sha256_fails_and_leaves_nothing() {
    let lab = lab(8, None).await;
    let wrong = ImageDigest {
        sha256_hex: Sha256::digest(b"another image")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        ..lab.digest.clone()
    };
    let (code, out) = lab.run(&lab.script(&wrong)).await;
    assert_ne!(code, 0, "{out}");
    lab.assert_nothing_left(&out);
    let reports = lab.server.reports();
    assert_eq!(stages(&reports), ["image", "failed"], "{out}");
    assert!(reports[1].1.contains("sha256"), "{reports:?}");
    assert!(!lab.server.seen().iter().any(|s| s.path == "/ztp/config"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_of_flash_space_fails_before_downloading() {
    let lab = lab(8, None).await;
    // A margin no disk has: the same check as a small flash, measured by df.
    let script =
        lab.script(&lab.digest)
            .replacen("\nMARGIN_KIB=16384\n", "\nMARGIN_KIB=1099511627776\n", 1);
    let (code, out) = lab.run(&script).await;
    assert_ne!(code, 0, "{out}");
    lab.assert_nothing_left(&out);
    let reports = lab.server.reports();
    assert_eq!(stages(&reports), ["image", "failed"], "{out}");
    assert!(reports[1].1.contains("not enough space"), "{reports:?}");
    assert!(lab.server.image_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_out_503_then_finishes() {
    let lab = lab(1, None).await;
    // Another leaf holds the only slot for 2.5 s.
    let held = lab
        .server
        .store
        .respond(&http::HeaderMap::new(), Box::new(|_, _| {}))
        .await;
    assert_eq!(held.status(), StatusCode::OK);
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        drop(held);
    });
    let (code, out) = lab.run(&lab.script(&lab.digest)).await;
    release.await.unwrap();
    assert_eq!(code, 0, "{out}");
    lab.assert_installed(&out);
    let codes: Vec<u16> = lab
        .server
        .image_requests()
        .iter()
        .map(|s| s.status)
        .collect();
    assert!(
        codes.len() >= 2 && codes[..codes.len() - 1].iter().all(|&c| c == 503),
        "{codes:?}"
    );
    assert_eq!(codes.last(), Some(&200));
    assert!(out.contains("busy (503), retrying in 1s"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_already_on_flash_is_not_downloaded_again() {
    let lab = lab(8, None).await;
    std::fs::write(lab.flash("EOS-4.33.2F.swi"), &lab.image).unwrap();
    let (code, out) = lab.run(&lab.script(&lab.digest)).await;
    assert_eq!(code, 0, "{out}");
    lab.assert_installed(&out);
    assert!(lab.server.image_requests().is_empty());
    assert_eq!(stages(&lab.server.reports()), ["image", "image-done"]);
}

#[test]
fn the_script_needs_only_what_eos_has() {
    let digest = ImageDigest {
        sha256_hex: "00".repeat(32),
        size: 1,
        file_name: "EOS.swi".into(),
    };
    let script = render(&UpgradeScript {
        base_url: "http://10.0.0.0",
        image: &digest,
        serial: None,
        version: "4.33.2F",
    });
    for absent in ["awk", "python", "wget", "stat ", "mktemp", "jq"] {
        assert!(!script.contains(absent), "the script uses {absent}");
    }
}
