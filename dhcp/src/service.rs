//! Runs the core on the socket and the lease store.
//!
//! Two threads of control, and why:
//! - the receive loop (a tokio task) decodes, runs [`Server::handle`] under a
//!   mutex, and sends replies that change no lease (OFFERs, NAKs, INFORM ACKs,
//!   renewals that need no write) at once;
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

use crate::gate::FloodGate;
use crate::lease::{LeaseChange, LeaseKey};
use crate::server::{Event, Outcome, Reply, Server};
use crate::socket::{DhcpSocket, RecvBatch};
use crate::store::LeaseStore;
use crate::time::Clock;
use dhcproto::v4::MessageType;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Packets read per `recvmmsg`, at most.
pub const RECV_BATCH: usize = 32;

/// Jobs waiting for the committer, at most. Beyond, packets are dropped
/// before the core sees them.
pub const MAX_QUEUED: usize = 4096;

/// How often the flood gate and the core forget quiet senders and, after a
/// burst, give their room back ([`FloodGate::sweep`], [`Server::sweep`]).
const GATE_SWEEP: Duration = Duration::from_secs(2);

/// Receives every [`Event`] once it is final (ACKs after their lease is stored).
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// An event sink that logs each event with `tracing`: state changes at info or
/// warn, per-packet events (OFFERs, renewals, INFORMs) at debug only; they are
/// counted per link instead ([`Server::link_counters`]).
pub fn log_events() -> EventSink {
    Arc::new(|e: &Event| {
        if !e.is_state_change() {
            tracing::debug!("{e}");
            return;
        }
        match e {
            Event::Naked { .. }
            | Event::Declined { .. }
            | Event::HeldByOther { .. }
            | Event::NoAddress { .. }
            | Event::Replaced { .. }
            | Event::Spoofed { .. }
            | Event::RateLimited { .. } => tracing::warn!("{e}"),
            _ => tracing::info!("{e}"),
        }
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
    tx: Option<mpsc::SyncSender<Job>>,
    thread: Option<JoinHandle<LeaseStore>>,
    queued: Arc<AtomicUsize>,
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

/// Counters of the receive loop, for status and benchmarks.
#[derive(Debug, Default)]
pub struct ServiceStats {
    /// Packets dropped before the core because the committer queue was full.
    pub overload_drops: AtomicU64,
    /// Wall-clock steps seen (the wall clock moved against the monotonic one).
    pub clock_steps: AtomicU64,
    /// Packets from over-rate senders dropped before decoding ([`FloodGate`]).
    pub flood_drops: AtomicU64,
}

impl Committer {
    /// Starts the committer thread with the store and the socket for ACKs.
    pub fn spawn(
        store: LeaseStore,
        server: Arc<Mutex<Server>>,
        socket: Arc<DhcpSocket>,
        sink: EventSink,
        stats: Arc<Mutex<CommitStats>>,
    ) -> Committer {
        let (tx, rx) = mpsc::sync_channel::<Job>(MAX_QUEUED);
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let thread = std::thread::Builder::new()
            .name("lease-commit".into())
            .spawn(move || commit_loop(store, server, rx, q, socket, sink, stats))
            .expect("spawning the lease committer thread");
        Committer {
            tx: Some(tx),
            thread: Some(thread),
            queued,
        }
    }

    /// Whether the queue has room for `jobs` more jobs.
    fn has_room_for(&self, jobs: usize) -> bool {
        self.queued.load(Ordering::Relaxed) + jobs <= MAX_QUEUED
    }

    fn submit(&self, job: Job) {
        self.queued.fetch_add(1, Ordering::Relaxed);
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
    server: Arc<Mutex<Server>>,
    rx: mpsc::Receiver<Job>,
    queued: Arc<AtomicUsize>,
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
        queued.fetch_sub(jobs.len(), Ordering::Relaxed);
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
        if result.is_ok() && !changes.is_empty() {
            server
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .mark_stored(&changes);
        }
        if result.is_ok() && store.needs_compaction() {
            // The server holds every lease (the store only their keys): copy
            // them under the lock, write without it.
            let leases: Vec<crate::Lease> = server
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .leases()
                .collect();
            // A failed compaction leaves the journal as it was: still correct.
            if let Err(e) = store.compact(leases.iter()) {
                tracing::warn!("lease file compaction failed, keeping the journal: {e}");
            }
        }
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
                if !failing && store.read_only().is_some() {
                    failing = true;
                } else if !failing {
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
                            LeaseChange::Put(l) => store.holds(&l.key(), l.address),
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
    service_stats: Arc<ServiceStats>,
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
        // Loading the lease file peaked well above what the leases keep; give
        // that back before serving (issue 10: RSS with many leases).
        trim_heap();
        let committer = Committer::spawn(
            store,
            server.clone(),
            socket.clone(),
            sink.clone(),
            stats.clone(),
        );
        Service {
            server,
            socket,
            committer,
            sink,
            stats,
            service_stats: Arc::default(),
        }
    }

    /// Receive-loop counters (overload drops, clock steps), shared.
    pub fn service_stats(&self) -> Arc<ServiceStats> {
        self.service_stats.clone()
    }

    /// The shared core, to change the served links or read leases.
    pub fn server(&self) -> Arc<Mutex<Server>> {
        self.server.clone()
    }

    /// Committer counters, shared: they stay readable after [`Service::run`] takes the service.
    pub fn commit_stats(&self) -> Arc<Mutex<CommitStats>> {
        self.stats.clone()
    }

    /// Reads both clocks, counting and logging a step of the wall clock.
    fn read_clock(&self, clock: &mut Clock) -> crate::time::Now {
        let (now, step) = clock.read();
        if let Some(step) = step {
            self.service_stats
                .clock_steps
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "the wall clock stepped by {}s; lease timers run on the monotonic \
                 clock and are not affected",
                step.secs
            );
        }
        now
    }

    /// Serves until `shutdown` completes, then writes every pending lease change
    /// and returns. Receive errors are logged and serving goes on.
    ///
    /// Packets are taken in batches of [`RECV_BATCH`]; each first passes the
    /// [`FloodGate`] on its raw header, so a flooding sender costs a hash lookup,
    /// not a decode, and the one socket drains faster than one leaf can fill it.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> LeaseStoreClosed {
        tokio::pin!(shutdown);
        let mut batch = RecvBatch::new(RECV_BATCH);
        let mut recv_errors = 0u64;
        let mut clock = Clock::new();
        let mut gate = FloodGate::for_core_rate(
            self.server
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .config()
                .client_packets_per_sec,
        );
        let mut gated: HashMap<u32, u64> = HashMap::new();
        let mut answered: Vec<Outcome> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        let mut sweep = tokio::time::interval(GATE_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = sweep.tick() => {
                    // Quiet senders forgotten, expired offers and leases
                    // dropped, and what a burst left behind given back, even
                    // while no packet arrives.
                    let now = self.read_clock(&mut clock);
                    gate.sweep(now.mono);
                    self.server.lock().unwrap_or_else(|p| p.into_inner()).sweep(now);
                }
                r = self.socket.recv_batch(&mut batch) => {
                    if let Err(e) = r {
                        recv_errors += 1;
                        if recv_errors.is_power_of_two() {
                            tracing::warn!("DHCP socket receive error ({recv_errors} so far): {e}");
                        }
                        continue;
                    }
                    let now = self.read_clock(&mut clock);
                    {
                        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
                        gate.set_rate(server.config().client_packets_per_sec.saturating_mul(2));
                        for (rx, packet) in batch.packets() {
                            if !gate.admit(now.mono, rx.ifindex, packet) {
                                *gated.entry(rx.ifindex).or_default() += 1;
                                continue;
                            }
                            if !self.committer.has_room_for(jobs.len() + 1) {
                                // Dropped before the core: it holds no change that
                                // is not queued. The client retries.
                                let n = self.service_stats.overload_drops.fetch_add(1, Ordering::Relaxed) + 1;
                                if n.is_power_of_two() {
                                    tracing::warn!(
                                        "lease writes are behind ({MAX_QUEUED} queued): dropped {n} \
                                         packet(s) so far; clients will retry"
                                    );
                                }
                                continue;
                            }
                            let outcome = server.handle(now, rx.ifindex, packet);
                            if outcome.changes.is_empty() {
                                answered.push(outcome);
                            } else {
                                jobs.push(Job::Commit {
                                    changes: outcome.changes,
                                    reply: outcome.reply,
                                    events: outcome.events,
                                });
                            }
                        }
                        for (ifindex, n) in gated.drain() {
                            self.service_stats.flood_drops.fetch_add(n, Ordering::Relaxed);
                            server.count_rate_limited(ifindex, n);
                        }
                    }
                    // Sent without the core's lock: the committer needs it too.
                    for job in jobs.drain(..) {
                        self.committer.submit(job);
                    }
                    for outcome in answered.drain(..) {
                        if let Some(reply) = &outcome.reply {
                            if let Err(e) = self.socket.send(reply) {
                                tracing::warn!("sending {:?} on ifindex {}: {e}", reply.kind, reply.ifindex);
                            }
                        }
                        for e in &outcome.events {
                            (self.sink)(e);
                        }
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

/// Returns freed heap memory to the system. glibc keeps it otherwise (musl's
/// allocator returns it by itself, so there this does nothing).
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What [`Service::run`] returns: how many leases were on storage at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseStoreClosed {
    /// Leases on storage, or `None` if the committer thread failed.
    pub leases: Option<usize>,
}
