//! The eAPI client against `eos-sim`, and the FastCli runner against `fake-fastcli`:
//! every error an operator may see, and the success paths over both transports.
//! All traffic is on 127.0.0.1, unix sockets in temporary directories, or inside
//! namespaces the test creates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use ztps_eapi::{
    retry_until, Backoff, Credentials, EapiClient, EapiConfig, EapiError, FastCli, FastCliError,
    Format,
};
use ztps_tests::netns::{self, Netns};
use ztps_tests::{wait_until, ChildGuard};

const EOS_SIM: &str = env!("CARGO_BIN_EXE_eos-sim");
const FAKE_FASTCLI: &str = env!("CARGO_BIN_EXE_fake-fastcli");
const TIMEOUT: Duration = Duration::from_secs(5);

/// A running eos-sim with its files in a temporary directory.
struct Sim {
    _child: ChildGuard,
    dir: TempDir,
    http: Option<String>,
}

impl Sim {
    /// Starts eos-sim on a free 127.0.0.1 port and a unix socket.
    fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(EOS_SIM);
        command.args(["--http", "127.0.0.1:0"]);
        Sim::spawn(dir, command, extra)
    }

    fn spawn(dir: TempDir, mut command: Command, extra: &[&str]) -> Sim {
        let path = |name: &str| dir.path().join(name).display().to_string();
        command
            .args([
                "--unix",
                &path("eapi.sock"),
                "--ready-file",
                &path("ready.json"),
            ])
            .args([
                "--control",
                &path("control.json"),
                "--request-log",
                &path("requests.log"),
            ])
            .args(extra)
            .stdout(Stdio::null())
            // Kept beside the other files for a failing test's investigation.
            .stderr(
                std::fs::File::create(dir.path().join("eos-sim.stderr")).expect("eos-sim.stderr"),
            );
        let child = ChildGuard::new("eos-sim", command.spawn().expect("spawn eos-sim"));
        let ready_file = dir.path().join("ready.json");
        assert!(
            wait_until(TIMEOUT, || ready_file.exists()),
            "eos-sim did not write {}",
            ready_file.display()
        );
        let ready: Value =
            serde_json::from_str(&std::fs::read_to_string(&ready_file).unwrap()).unwrap();
        let http = ready["http"].as_str().map(str::to_owned);
        Sim {
            _child: child,
            dir,
            http,
        }
    }

    fn http_url(&self) -> String {
        format!(
            "http://{}/command-api",
            self.http.as_deref().expect("eos-sim has an http listener")
        )
    }

    fn unix_url(&self) -> String {
        format!("unix:{}", self.dir.path().join("eapi.sock").display())
    }

    /// Switches the fault mode; written whole and renamed so eos-sim never reads half.
    fn set_mode(&self, control: &str) {
        let tmp = self.dir.path().join("control.tmp");
        std::fs::write(&tmp, control).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("control.json")).unwrap();
    }

    /// The request log, one JSON object per request.
    fn requests(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("request log line is JSON"))
            .collect()
    }
}

fn client(url: &str, timeout: Duration) -> EapiClient {
    EapiClient::new(&EapiConfig {
        url: url.to_owned(),
        timeout,
        credentials: None,
    })
    .expect("valid url")
}

fn assert_enable_hint(err: &EapiError) {
    let text = err.to_string();
    for config in [
        "management api http-commands",
        "protocol unix-socket",
        "protocol http localhost",
        "no shutdown",
    ] {
        assert!(text.contains(config), "{text:?} should name `{config}`");
    }
}

/// Polls an async condition every 50 ms for at most `timeout`.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------
// Connection errors

#[tokio::test]
async fn missing_unix_socket_names_the_path_and_the_eos_config() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("command-api.sock");
    let err = client(&format!("unix:{}", socket.display()), TIMEOUT)
        .version()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EapiError::SocketMissing { path } if *path == socket),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&socket.display().to_string()),
        "{err}"
    );
    assert_enable_hint(&err);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn unix_socket_without_a_listener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("command-api.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap()); // the file stays
    let err = client(&format!("unix:{}", socket.display()), TIMEOUT)
        .version()
        .await
        .unwrap_err();
    assert!(
        matches!(err, EapiError::ConnectionRefused { .. }),
        "{err:?}"
    );
    assert_enable_hint(&err);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn nothing_listening_on_http_is_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/command-api");
    let err = client(&url, TIMEOUT)
        .connected_interfaces()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EapiError::ConnectionRefused { url: u } if *u == url),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    assert_enable_hint(&err);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn refuse_mode_closes_and_reopens_both_listeners() {
    let sim = Sim::start(&[]);
    for url in [sim.http_url(), sim.unix_url()] {
        client(&url, TIMEOUT)
            .version()
            .await
            .expect("answers before refuse");
    }
    sim.set_mode(r#"{"mode":"refuse"}"#);
    for url in [sim.http_url(), sim.unix_url()] {
        let refused = eventually(TIMEOUT, || async {
            matches!(
                client(&url, TIMEOUT).version().await,
                Err(EapiError::ConnectionRefused { .. })
            )
        })
        .await;
        assert!(refused, "{url} still accepts connections in refuse mode");
    }
    sim.set_mode(r#"{"mode":"ok"}"#);
    for url in [sim.http_url(), sim.unix_url()] {
        let back = eventually(TIMEOUT, || async {
            client(&url, TIMEOUT).version().await.is_ok()
        })
        .await;
        assert!(back, "{url} did not reopen after refuse");
    }
}

// ---------------------------------------------------------------------------------
// HTTP and protocol errors

#[tokio::test]
async fn http_502_is_a_retryable_status() {
    let sim = Sim::start(&[]);
    sim.set_mode(r#"{"mode":"http502"}"#);
    for url in [sim.http_url(), sim.unix_url()] {
        let err = client(&url, TIMEOUT).version().await.unwrap_err();
        assert!(
            matches!(err, EapiError::HttpStatus { status: 502, .. }),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert!(err.to_string().contains("HTTP 502"), "{err}");
        assert!(err.to_string().contains("still starting"), "{err}");
    }
    sim.set_mode(r#"{"mode":"http503"}"#);
    let err = client(&sim.http_url(), TIMEOUT)
        .version()
        .await
        .unwrap_err();
    assert!(
        matches!(err, EapiError::HttpStatus { status: 503, .. }) && err.is_retryable(),
        "{err:?}"
    );
}

#[tokio::test]
async fn retry_helper_waits_out_the_boot_502s() {
    let sim = Sim::start(&["--boot-502", "2.5"]);
    let eapi = client(&sim.http_url(), TIMEOUT);
    let first = eapi.version().await.unwrap_err();
    assert!(
        matches!(first, EapiError::HttpStatus { status: 502, .. }),
        "{first:?}"
    );

    let started = Instant::now();
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        factor: 2.0,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let version = retry_until(deadline, backoff, || eapi.version())
        .await
        .expect("eAPI ready after boot");
    assert_eq!(version.model.as_deref(), Some("vEOS-lab"));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );

    let outcomes: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        outcomes.iter().filter(|o| *o == "http502").count() >= 3,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.last().map(String::as_str),
        Some("ok"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn retry_helper_gives_up_at_the_deadline_with_the_last_error() {
    let sim = Sim::start(&[]);
    sim.set_mode(r#"{"mode":"http502"}"#);
    let eapi = client(&sim.http_url(), TIMEOUT);
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(100),
        factor: 2.0,
    };
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    let err = retry_until(deadline, backoff, || eapi.version())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EapiError::HttpStatus { status: 502, .. }),
        "{err:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(
        sim.requests().len() >= 5,
        "{} requests",
        sim.requests().len()
    );
}

#[tokio::test]
async fn garbage_body_is_malformed_and_says_what_was_expected() {
    let sim = Sim::start(&[]);
    sim.set_mode(r#"{"mode":"garbage"}"#);
    let err = client(&sim.unix_url(), TIMEOUT)
        .ip_interfaces()
        .await
        .unwrap_err();
    assert!(matches!(err, EapiError::Malformed { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("expected a JSON-RPC 2.0 response object"),
        "{text}"
    );
    assert!(text.contains("this is not JSON"), "{text}");
}

#[tokio::test]
async fn slow_answer_is_a_timeout() {
    let sim = Sim::start(&[]);
    sim.set_mode(r#"{"mode":"slow","delay_ms":3000}"#);
    for url in [sim.http_url(), sim.unix_url()] {
        let started = Instant::now();
        let err = client(&url, Duration::from_millis(300))
            .version()
            .await
            .unwrap_err();
        assert!(
            matches!(err, EapiError::Timeout { after, .. } if after == Duration::from_millis(300)),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(err.is_retryable());
        assert!(
            err.to_string().contains("did not answer within 300ms"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn unknown_command_is_error_1002_naming_the_command() {
    let sim = Sim::start(&[]);
    let eapi = client(&sim.http_url(), TIMEOUT);
    let err = eapi
        .run_cmds(&["show version", "show bogus", "show clock"], Format::Json)
        .await
        .unwrap_err();
    let EapiError::Command {
        code,
        message,
        command,
        errors,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*code, 1002);
    assert_eq!(
        message,
        "CLI command 2 of 3 'show bogus' failed: invalid command"
    );
    assert_eq!(command.as_deref(), Some("show bogus"));
    assert_eq!(errors, &["Invalid input (at token 1: 'bogus')"]);
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("1002") && text.contains("`show bogus`") && text.contains("at token 1"),
        "{text}"
    );
    // The third command did not run.
    let last = sim.requests().pop().unwrap();
    assert_eq!(last["outcome"], "error 1002");
}

#[tokio::test]
async fn command_without_json_form_is_1003_and_runs_as_text() {
    let sim = Sim::start(&[]);
    let eapi = client(&sim.unix_url(), TIMEOUT);
    let err = eapi
        .run_cmds(&["show logging"], Format::Json)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EapiError::Command { code: 1003, command: Some(c), .. } if c == "show logging"),
        "{err:?}"
    );
    assert!(err.to_string().contains("format text"), "{err}");
    let output = eapi
        .run_text(&["enable", "show logging", "show version"])
        .await
        .unwrap();
    assert_eq!(output[0], "");
    assert!(output[1].contains("Syslog logging"), "{}", output[1]);
    assert!(output[2].contains("Arista vEOS-lab"), "{}", output[2]);
}

#[tokio::test]
async fn basic_auth_over_http() {
    let sim = Sim::start(&["--credentials", "ztps:s3cret"]);
    let err = client(&sim.http_url(), TIMEOUT)
        .version()
        .await
        .unwrap_err();
    assert!(
        matches!(err, EapiError::HttpStatus { status: 401, .. }) && !err.is_retryable(),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("check the eAPI user and password"),
        "{err}"
    );

    let password_file = sim.dir.path().join("password");
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let credentials = Credentials::from_password_file("ztps", &password_file).unwrap();
    let config = EapiConfig {
        url: sim.http_url(),
        timeout: TIMEOUT,
        credentials: Some(credentials),
    };
    let version = EapiClient::new(&config).unwrap().version().await.unwrap();
    assert_eq!(version.model.as_deref(), Some("vEOS-lab"));
}

// ---------------------------------------------------------------------------------
// Success paths

#[tokio::test]
async fn version_management_api_and_configure_over_both_transports() {
    let sim = Sim::start(&[
        "--model",
        "DCS-7050SX3-48YC8",
        "--serial",
        "JPE12345678",
        "--system-mac",
        "28:99:3a:23:92:09",
        "--architecture",
        "x86_64",
        "--version",
        "4.32.2F",
        "--hardware-revision",
        "11.02",
    ]);
    for url in [sim.http_url(), sim.unix_url()] {
        let eapi = client(&url, TIMEOUT);
        let version = eapi.version().await.unwrap();
        assert_eq!(version.model.as_deref(), Some("DCS-7050SX3-48YC8"));
        assert_eq!(version.serial.as_deref(), Some("JPE12345678"));
        assert_eq!(version.system_mac.as_deref(), Some("28:99:3a:23:92:09"));
        assert_eq!(version.architecture.as_deref(), Some("x86_64"));
        assert_eq!(version.version.as_deref(), Some("4.32.2F"));
        assert_eq!(version.hardware_revision.as_deref(), Some("11.02"));

        let api = eapi.management_api().await.unwrap();
        assert!(api.enabled && api.unix_socket_running && api.local_http_running);
        let port: u16 = sim
            .http
            .as_deref()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(api.local_http_port, Some(port));
        assert!(
            api.urls.iter().any(|u| u.ends_with(&sim.unix_url())),
            "{:?}",
            api.urls
        );

        eapi.configure(&["interface Ethernet1", "description leaf1"])
            .await
            .unwrap();
        let last = sim.requests().pop().unwrap();
        assert_eq!(
            last["cmds"],
            serde_json::json!([
                "enable",
                "configure terminal",
                "interface Ethernet1",
                "description leaf1",
                "end"
            ])
        );
        assert_eq!(
            last["config"],
            serde_json::json!([
                "configure terminal",
                "interface Ethernet1",
                "description leaf1",
                "end"
            ])
        );
        assert_eq!(last["outcome"], "ok");
    }
}

/// The key names and JSON types of an object, recursively for objects and the
/// first element of arrays: what a parser relies on.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

#[tokio::test]
async fn lldp_neighbors_come_from_the_tests_table_in_the_shape_of_the_capture() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = dir.path().join("lldp.json");
    let sim = Sim::start(&["--lldp-file", table.to_str().unwrap()]);
    let eapi = client(&sim.unix_url(), TIMEOUT);
    let neighbors =
        |answer: Vec<Value>| answer.last().expect("one result")["lldpNeighbors"].clone();

    // No file yet: no neighbours.
    let answer = eapi
        .run_cmds(&["show lldp neighbors"], Format::Json)
        .await
        .unwrap();
    assert_eq!(neighbors(answer), serde_json::json!([]));

    ztps_tests::eos::set_lldp_neighbor(&table, "Ethernet10", "leaf10.example.net", "Ethernet49/1");
    ztps_tests::eos::set_lldp_neighbor(&table, "Ethernet3", "leaf3.example.net", "Ethernet50/1");
    let answer = eapi
        .run_cmds(&["show lldp neighbors"], Format::Json)
        .await
        .unwrap();
    let capture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../eapi/tests/fixtures/goeapi_show_lldp_neighbors_jsonrpc_envelope.json"),
        )
        .expect("the goeapi LLDP capture"),
    )
    .unwrap();
    let captured = capture["result"].as_array().unwrap().last().unwrap();
    let ours = answer.last().unwrap();
    assert_eq!(shape(ours), shape(captured), "{ours:#}");
    assert_eq!(
        neighbors(answer),
        serde_json::json!([
            {"ttl": 120, "neighborDevice": "leaf3.example.net", "neighborPort": "Ethernet50/1", "port": "Ethernet3"},
            {"ttl": 120, "neighborDevice": "leaf10.example.net", "neighborPort": "Ethernet49/1", "port": "Ethernet10"}
        ])
    );
    let text = eapi.run_text(&["show lldp neighbors"]).await.unwrap();
    assert!(
        text.last()
            .unwrap()
            .contains("Et3           leaf3.example.net"),
        "{text:?}"
    );

    // The client's own parser reads it: each leaf's device name on its port.
    let parsed = eapi.lldp_neighbors().await.unwrap();
    let rows: Vec<(&str, &str, &str, Option<Duration>)> = parsed
        .iter()
        .map(|n| {
            (
                n.port.as_str(),
                n.neighbor_device.as_str(),
                n.neighbor_port.as_str(),
                n.ttl,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "Ethernet3",
                "leaf3.example.net",
                "Ethernet50/1",
                Some(Duration::from_secs(120))
            ),
            (
                "Ethernet10",
                "leaf10.example.net",
                "Ethernet49/1",
                Some(Duration::from_secs(120))
            ),
        ]
    );

    // A replaced leaf, and an unplugged one.
    ztps_tests::eos::set_lldp_neighbor(&table, "Ethernet3", "leaf3b.example.net", "Ethernet1");
    ztps_tests::eos::clear_lldp_neighbor(&table, "Ethernet10");
    let answer = eapi
        .run_cmds(&["show lldp neighbors"], Format::Json)
        .await
        .unwrap();
    assert_eq!(
        neighbors(answer),
        serde_json::json!([
            {"ttl": 120, "neighborDevice": "leaf3b.example.net", "neighborPort": "Ethernet1", "port": "Ethernet3"}
        ])
    );

    // A broken table is ignored: the last good one stays.
    std::fs::write(&table, "{not json").unwrap();
    let answer = eapi
        .run_cmds(&["show lldp neighbors"], Format::Json)
        .await
        .unwrap();
    assert_eq!(neighbors(answer).as_array().map(Vec::len), Some(1));
}

/// Runs `f` on a thread that has entered `ns`'s network namespace, so its sockets
/// (127.0.0.1 included) are the namespace's.
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from("/var/run/netns").join(ns.name());
    std::thread::spawn(move || {
        let file =
            std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("setns into the test namespace");
        f()
    })
    .join()
    .expect("thread in the namespace panicked")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Checks the typed calls against the namespace built by the test below.
async fn check_spine_interfaces(url: String) {
    let eapi = client(&url, TIMEOUT);
    let connected = eapi.connected_interfaces().await.unwrap();
    let names: Vec<&str> = connected.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["Ethernet1", "Ethernet3", "Management1"],
        "over {url}"
    );
    assert!(connected
        .iter()
        .all(|i| i.is_connected() && i.interface_mode.as_deref() == Some("routed")));

    let ip = eapi.ip_interfaces().await.unwrap();
    let names: Vec<&str> = ip.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["Ethernet1", "Ethernet3", "Loopback0", "Management1"],
        "over {url}"
    );
    let et1 = &ip[0];
    assert_eq!(
        et1.address.map(|a| a.to_string()).as_deref(),
        Some("10.0.0.0/31")
    );
    assert_eq!(
        et1.secondaries
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.0.1.0/31"]
    );
    assert_eq!(et1.unnumbered, None);
    assert_eq!(et1.interface_status.as_deref(), Some("connected"));
    assert_eq!(et1.line_protocol_status.as_deref(), Some("up"));
    assert_eq!(et1.mtu, Some(9000));
    let et3 = &ip[1];
    assert_eq!(et3.address, None);
    assert_eq!(et3.unnumbered.as_deref(), Some("Loopback0"));
    assert_eq!(
        ip[2].address.map(|a| a.to_string()).as_deref(),
        Some("192.0.2.1/32")
    );
    assert_eq!(
        ip[3].address.map(|a| a.to_string()).as_deref(),
        Some("192.168.0.10/24")
    );
}

#[test]
fn interfaces_follow_the_kernel_links_of_the_namespace() {
    netns::require_root();
    let spine = Netns::new("eapis");
    let leaf = Netns::new("eapil");
    netns::veth(&spine, "et1", &leaf, "eth1");
    netns::veth(&spine, "et2", &leaf, "eth2"); // leaf end stays down: no carrier
    netns::veth(&spine, "et3", &leaf, "eth3");
    // No dummy interfaces: containers often lack the module.
    netns::veth(&spine, "ma1", &leaf, "eth4");
    netns::veth(&spine, "lo0", &leaf, "eth5");
    spine.ip("addr add 10.0.0.0/31 dev et1");
    spine.ip("addr add 10.0.1.0/31 dev et1");
    spine.ip("link set et1 mtu 9000");
    spine.ip("addr add 192.168.0.10/24 dev ma1");
    spine.ip("addr add 192.0.2.1/32 dev lo0");
    for link in ["et1", "et2", "et3", "ma1", "lo0"] {
        spine.ip(&format!("link set {link} up"));
    }
    for link in ["eth1", "eth3", "eth4"] {
        leaf.ip(&format!("link set {link} up"));
    }

    let dir = tempfile::tempdir().unwrap();
    let mut command = spine.cmd(EOS_SIM);
    command.args([
        "--http",
        "127.0.0.1:8080",
        "--unnumbered",
        "Ethernet3=Loopback0",
    ]);
    let sim = Sim::spawn(dir, command, &[]);
    let http_url = sim.http_url();
    assert_eq!(http_url, "http://127.0.0.1:8080/command-api");

    // Over http from inside the namespace, and over the unix socket from outside it.
    in_netns(&spine, move || block_on(check_spine_interfaces(http_url)));
    block_on(check_spine_interfaces(sim.unix_url()));

    let eapi = client(&sim.unix_url(), TIMEOUT);
    block_on(async {
        let status = eapi
            .run_cmds(&["show interfaces status"], Format::Json)
            .await
            .unwrap();
        let all = ztps_eapi::parse_interfaces_status(&status[0]).unwrap();
        let et2 = all
            .iter()
            .find(|i| i.name == "Ethernet2")
            .expect("Ethernet2 listed without `connected`");
        assert_eq!(et2.link_status, "notconnect");

        let connected_names = || async {
            eapi.connected_interfaces()
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.name)
                .collect::<Vec<_>>()
        };
        // Admin down on the spine: gone from `connected`, listed as disabled.
        spine.ip("link set et1 down");
        assert!(
            eventually(TIMEOUT, || async {
                !connected_names().await.contains(&"Ethernet1".to_owned())
            })
            .await,
            "Ethernet1 still connected after `ip link set et1 down`"
        );
        // Carrier loss (the leaf's end goes down): notconnect.
        leaf.ip("link set eth3 down");
        assert!(
            eventually(TIMEOUT, || async {
                connected_names().await == ["Management1"]
            })
            .await,
            "Ethernet3 still connected after its peer went down: {:?}",
            connected_names().await
        );
        let status = eapi
            .run_cmds(&["show interfaces status"], Format::Json)
            .await
            .unwrap();
        let all = ztps_eapi::parse_interfaces_status(&status[0]).unwrap();
        let link_status = |name: &str| {
            all.iter()
                .find(|i| i.name == name)
                .map(|i| i.link_status.clone())
        };
        assert_eq!(link_status("Ethernet1").as_deref(), Some("disabled"));
        assert_eq!(link_status("Ethernet3").as_deref(), Some("notconnect"));

        spine.ip("link set et1 up");
        assert!(
            eventually(TIMEOUT, || async {
                connected_names().await.contains(&"Ethernet1".to_owned())
            })
            .await,
            "Ethernet1 not connected again after `ip link set et1 up`"
        );
    });
}

// ---------------------------------------------------------------------------------
// FastCli

/// A FastCli that is fake-fastcli with `mode`, logging to `dir/fastcli.log`.
fn fake_fastcli(dir: &Path, mode: &str, timeout: Duration) -> FastCli {
    let script = dir.join(format!("FastCli-{}", mode.replace(':', "-")));
    let log = dir.join("fastcli.log");
    write_script(
        &script,
        &format!(
            "FAKE_FASTCLI_MODE='{mode}' FAKE_FASTCLI_LOG='{}' FAKE_FASTCLI_OUTPUT='ztps restarted' exec '{FAKE_FASTCLI}' \"$@\"",
            log.display()
        ),
    );
    FastCli {
        path: script,
        timeout,
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn fastcli_runs(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("fastcli.log")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn fastcli_ok_returns_stdout_and_passes_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let fastcli = fake_fastcli(dir.path(), "ok", TIMEOUT);
    let output = fastcli
        .run(&["virtual-machine ztps restart", "show virtual-machine"])
        .await
        .unwrap();
    assert_eq!(output, "ztps restarted\n");
    let runs = fastcli_runs(dir.path());
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["privilege"], 15);
    assert_eq!(
        runs[0]["commands"],
        "virtual-machine ztps restart\nshow virtual-machine"
    );
}

#[tokio::test]
async fn fastcli_invalid_input_is_an_error_despite_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let err = fake_fastcli(dir.path(), "invalid", TIMEOUT)
        .run(&["foo bar"])
        .await
        .unwrap_err();
    let FastCliError::Cli {
        errors,
        output,
        commands,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(errors, &["Invalid input (at token 1: 'foo')"]);
    assert!(output.contains("% Invalid input"));
    assert_eq!(commands, "foo bar");
    assert!(
        err.to_string()
            .contains("Invalid input (at token 1: 'foo')"),
        "{err}"
    );
}

#[tokio::test]
async fn fastcli_failure_carries_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let err = fake_fastcli(dir.path(), "fail", TIMEOUT)
        .run(&["virtual-machine ztps restart"])
        .await
        .unwrap_err();
    let FastCliError::Exit { status, stderr, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("simulated failure"), "{stderr}");
    assert!(err.to_string().contains("simulated failure"), "{err}");
}

#[tokio::test]
async fn fastcli_fails_the_first_n_times_then_works() {
    let dir = tempfile::tempdir().unwrap();
    let fastcli = fake_fastcli(dir.path(), "fail-times:2", TIMEOUT);
    for _ in 0..2 {
        assert!(matches!(
            fastcli.run(&["show version"]).await,
            Err(FastCliError::Exit { .. })
        ));
    }
    assert_eq!(
        fastcli.run(&["show version"]).await.unwrap(),
        "ztps restarted\n"
    );
    assert_eq!(fastcli_runs(dir.path()).len(), 3);
}

#[tokio::test]
async fn fastcli_hang_times_out_and_the_process_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let fastcli = fake_fastcli(dir.path(), "hang", Duration::from_millis(500));
    let started = Instant::now();
    let err = fastcli
        .run(&["virtual-machine ztps restart"])
        .await
        .unwrap_err();
    assert!(
        matches!(err, FastCliError::Timeout { after, .. } if after == Duration::from_millis(500)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("was killed"), "{err}");

    let runs = fastcli_runs(dir.path());
    let pid = runs[0]["pid"]
        .as_u64()
        .expect("fake-fastcli logged its pid");
    let gone = wait_until(Duration::from_secs(2), || !process_alive(pid));
    assert!(
        gone,
        "fake-fastcli (pid {pid}) still runs after the timeout"
    );
}

#[tokio::test]
async fn fastcli_timeout_kills_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    // A FastCli that leaves a background child holding its stdout, then hangs.
    let script = dir.path().join("FastCli");
    let child_pid = dir.path().join("child.pid");
    write_script(
        &script,
        &format!(
            "sleep 3600 &\necho $! > '{}'\nexec sleep 3600",
            child_pid.display()
        ),
    );

    let fastcli = FastCli {
        path: script,
        timeout: Duration::from_millis(500),
    };
    let started = Instant::now();
    let err = fastcli.run(&["show version"]).await.unwrap_err();
    assert!(matches!(err, FastCliError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let pid: u64 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || !process_alive(pid)),
        "background child {pid} survived"
    );
}

#[tokio::test]
async fn fastcli_missing_names_the_path() {
    let fastcli = FastCli {
        path: "/nonexistent/usr/bin/FastCli".into(),
        timeout: TIMEOUT,
    };
    let err = fastcli.run(&["show version"]).await.unwrap_err();
    assert!(matches!(err, FastCliError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/usr/bin/FastCli"),
        "{err}"
    );
}

/// Whether `pid` exists and is not a zombie.
fn process_alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
