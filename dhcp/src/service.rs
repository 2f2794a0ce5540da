//! Runs the core on the socket and the lease store.
//!
//! Two threads of control, and why:
//! - the receive loop (a tokio task) decodes, runs [`Server::handle`] under a
//!   mutex, and sends replies that change no lease (OFFERs, NAKs, INFORM ACKs)
//!   at once;
//! - the committer (a plain thread, because fsync blocks) takes every reply that
//!   carries lease changes. It drains all jobs waiting in its channel, appends
//!   their changes in one write, fdatasyncs once, and only then sends their
//!   ACKs: group commit. Under load a batch grows while the previous fsync runs,
//!   so throughput rises with load while every ACK stays durable.
//!
//! If the write fails (disk full), the ACKs of that batch are withheld (the
//! client retries, RFC 2131 §4.4.5), except renewals of a lease that is already on
//! storage with the same address: losing only the new expiry loses no binding.
//! The failed changes are retried with the next batch and every second, so the
//! file catches up when space returns. The failure is logged once, and the
//! recovery once.

use crate::lease::{LeaseChange, LeaseKey, LeaseState};
use crate::server::{Event, Reply, Server};
use crate::socket::DhcpSocket;
use crate::store::LeaseStore;
use dhcproto::v4::MessageType;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Receives every [`Event`] once it is final (ACKs after their lease is stored).
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// An event sink that logs each event with `tracing`.
pub fn log_events() -> EventSink {
    Arc::new(|e: &Event| match e {
        // Rate-limited in the core, and what an operator needs to see when a
        // leaf is not answered.
        Event::Malformed { .. } | Event::UnservedLink { .. } => tracing::info!("{e}"),
        Event::Naked { .. } | Event::Declined { .. } | Event::HeldByOther { .. } => {
            tracing::warn!("{e}")
        }
        Event::NoAddress { .. } => tracing::warn!("{e}"),
        _ => tracing::info!("{e}"),
    })
}

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

enum Job {
    Commit {
        changes: Vec<LeaseChange>,
        reply: Option<Reply>,
        events: Vec<Event>,
    },
    Flush(mpsc::Sender<()>),
}

/// Handle to the committer thread.
pub struct Committer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<LeaseStore>>,
}

/// Counters of the committer, for status and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitStats {
    /// Batches written (one fsync each).
    pub batches: u64,
    /// Changes written.
    pub changes: u64,
    /// Batches that failed to write.
    pub failures: u64,
    /// The error of the last batch, while writes are failing.
    pub failing: Option<String>,
}

impl Committer {
    /// Starts the committer thread with the store and the socket for ACKs.
    pub fn spawn(
        store: LeaseStore,
        socket: Arc<DhcpSocket>,
        sink: EventSink,
        stats: Arc<Mutex<CommitStats>>,
    ) -> Committer {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("lease-commit".into())
            .spawn(move || commit_loop(store, rx, socket, sink, stats))
            .expect("spawning the lease committer thread");
        Committer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn submit(&self, job: Job) {
        if let Some(tx) = &self.tx {
            // The thread only stops when we drop the sender, so this cannot fail
            // while `self` lives, short of the thread panicking.
            if tx.send(job).is_err() {
                tracing::error!("lease committer thread is gone; lease change not stored");
            }
        }
    }

    /// Waits until everything submitted so far has been written (or has failed).
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.submit(Job::Flush(tx));
        let _ = rx.recv_timeout(Duration::from_secs(30));
    }

    /// Stops the thread after it has written everything, and returns the store.
    pub fn shutdown(mut self) -> Option<LeaseStore> {
        self.tx.take();
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const MAX_BATCH: usize = 4096;

fn commit_loop(
    mut store: LeaseStore,
    rx: mpsc::Receiver<Job>,
    socket: Arc<DhcpSocket>,
    sink: EventSink,
    stats: Arc<Mutex<CommitStats>>,
) -> LeaseStore {
    // Changes that failed to reach storage, coalesced by lease (last wins).
    let mut backlog: HashMap<LeaseKey, LeaseChange> = HashMap::new();
    let mut failing = false;
    loop {
        let first = if backlog.is_empty() {
            match rx.recv() {
                Ok(j) => Some(j),
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(j) => Some(j),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Last chance to store the backlog before exiting.
                    let changes: Vec<LeaseChange> = backlog.drain().map(|(_, c)| c).collect();
                    if let Err(e) = store.commit(&changes) {
                        tracing::error!(
                            "stopping with {} lease change(s) not stored: {e}",
                            changes.len()
                        );
                    }
                    break;
                }
            }
        };
        let mut jobs: Vec<Job> = first.into_iter().collect();
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut changes: Vec<LeaseChange> = backlog.drain().map(|(_, c)| c).collect();
        let mut flushes = Vec::new();
        let mut pending = Vec::new();
        for job in jobs {
            match job {
                Job::Commit {
                    changes: c,
                    reply,
                    events,
                } => {
                    changes.extend(c.iter().cloned());
                    pending.push((c, reply, events));
                }
                Job::Flush(done) => flushes.push(done),
            }
        }
        let result = store.commit(&changes);
        {
            let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
            match &result {
                Ok(()) => {
                    s.batches += 1;
                    s.changes += changes.len() as u64;
                    s.failing = None;
                }
                Err(e) => {
                    s.failures += 1;
                    s.failing = Some(e.to_string());
                }
            }
        }
        match result {
            Ok(()) => {
                if failing {
                    failing = false;
                    tracing::warn!(
                        "lease file {} writable again; all pending lease changes stored",
                        store.path().display()
                    );
                }
                for (_, reply, events) in pending {
                    if let Some(r) = reply {
                        if let Err(e) = socket.send(&r) {
                            tracing::warn!("sending {:?} on ifindex {}: {e}", r.kind, r.ifindex);
                        }
                    }
                    for e in &events {
                        sink(e);
                    }
                }
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    tracing::error!(
                        "{e}{}; withholding ACKs for new leases until it can be written \
                         (clients will retry), renewals of stored leases still answered",
                        if e.is_disk_full() { " (disk full)" } else { "" }
                    );
                }
                for c in changes {
                    backlog.insert(c.key(), c);
                }
                for (c, reply, events) in pending {
                    let already_stored = reply.as_ref().is_some_and(|r| r.kind == MessageType::Ack)
                        && c.iter().all(|ch| match ch {
                            LeaseChange::Put(l) => store.get(&l.key()).is_some_and(|s| {
                                s.address == l.address && s.state == LeaseState::Bound
                            }),
                            LeaseChange::Delete(_) => false,
                        });
                    if already_stored {
                        if let Some(r) = reply {
                            let _ = socket.send(&r);
                        }
                        for e in &events {
                            sink(e);
                        }
                    } else {
                        for ev in &events {
                            if let Event::Acked {
                                link, mac, address, ..
                            } = ev
                            {
                                tracing::debug!(
                                    "{link}: ACK of {address} to {mac} withheld: lease not stored"
                                );
                            }
                        }
                    }
                }
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
    store
}

/// The DHCP service: the core, the socket and the committer together.
pub struct Service {
    server: Arc<Mutex<Server>>,
    socket: Arc<DhcpSocket>,
    committer: Committer,
    sink: EventSink,
    stats: Arc<Mutex<CommitStats>>,
}

impl Service {
    /// Puts the pieces together. The server should already hold the leases the
    /// store loaded ([`Server::load_leases`]).
    pub fn new(
        server: Arc<Mutex<Server>>,
        socket: DhcpSocket,
        store: LeaseStore,
        sink: EventSink,
    ) -> Service {
        let socket = Arc::new(socket);
        let stats = Arc::new(Mutex::new(CommitStats::default()));
        let committer = Committer::spawn(store, socket.clone(), sink.clone(), stats.clone());
        Service {
            server,
            socket,
            committer,
            sink,
            stats,
        }
    }

    /// The shared core, to change the served links or read leases.
    pub fn server(&self) -> Arc<Mutex<Server>> {
        self.server.clone()
    }

    /// Committer counters, shared: they stay readable after [`Service::run`] takes the service.
    pub fn commit_stats(&self) -> Arc<Mutex<CommitStats>> {
        self.stats.clone()
    }

    /// Serves until `shutdown` completes, then writes every pending lease change
    /// and returns. Receive errors are logged and serving goes on.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> LeaseStoreClosed {
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; 4096];
        let mut recv_errors = 0u64;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                r = self.socket.recv(&mut buf) => {
                    let rx = match r {
                        Ok(rx) => rx,
                        Err(e) => {
                            recv_errors += 1;
                            if recv_errors.is_power_of_two() {
                                tracing::warn!("DHCP socket receive error ({recv_errors} so far): {e}");
                            }
                            continue;
                        }
                    };
                    let now = unix_now();
                    let outcome = self
                        .server
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .handle(now, rx.ifindex, &buf[..rx.len]);
                    if outcome.changes.is_empty() {
                        if let Some(reply) = &outcome.reply {
                            if let Err(e) = self.socket.send(reply) {
                                tracing::warn!("sending {:?} on ifindex {}: {e}", reply.kind, reply.ifindex);
                            }
                        }
                        for e in &outcome.events {
                            (self.sink)(e);
                        }
                    } else {
                        self.committer.submit(Job::Commit {
                            changes: outcome.changes,
                            reply: outcome.reply,
                            events: outcome.events,
                        });
                    }
                }
            }
        }
        let committer = self.committer;
        let store = tokio::task::spawn_blocking(move || committer.shutdown())
            .await
            .ok()
            .flatten();
        LeaseStoreClosed {
            leases: store.map(|s| s.len()),
        }
    }

    /// Waits until every lease change so far is on storage.
    pub fn flush(&self) {
        self.committer.flush();
    }
}

/// What [`Service::run`] returns: how many leases were on storage at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseStoreClosed {
    /// Leases on storage, or `None` if the committer thread failed.
    pub leases: Option<usize>,
}
