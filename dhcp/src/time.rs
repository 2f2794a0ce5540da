//! Time: the monotonic clock runs every timer, the wall clock is only written
//! and shown.
//!
//! A spine with no management network can boot with a wrong wall clock (1970,
//! or years ahead) until NTP syncs, and the clock can step at any time. So the
//! core takes a [`Now`] with both readings: deadlines in memory (offer hold,
//! quarantine, replace-after, lease expiry, rate limits, "silent since") are
//! [`Mono`], and wall time is used only to stamp what is written to flash and to
//! convert stored expiries back at start. [`Clock`] (I/O edge, used by the
//! service) reads both and notices steps.

use std::time::Duration;

/// Seconds since the Unix epoch, as written to flash and shown.
pub type UnixTime = u64;

/// No wall clock earlier than this is believed (2026-11-01T00:00:00Z, before
/// this code was built): a spine that booted in 1970 writes no 1970 record.
pub const NOT_BEFORE: UnixTime = 1_793_491_200;

/// A monotonic instant in milliseconds since an arbitrary origin (for
/// [`Clock`], the kernel's `CLOCK_MONOTONIC`: time since boot). Never steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(pub u64);

impl Mono {
    /// `d` later.
    pub fn after(self, d: Duration) -> Mono {
        Mono(
            self.0
                .saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64),
        )
    }

    /// `d` earlier, or the origin.
    pub fn before(self, d: Duration) -> Mono {
        Mono(
            self.0
                .saturating_sub(d.as_millis().min(u128::from(u64::MAX)) as u64),
        )
    }

    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// The time a packet is handled at: both clocks, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: every timer.
    pub mono: Mono,
    /// Wall time: only what is written and shown.
    pub wall: UnixTime,
}

impl From<UnixTime> for Now {
    /// Both clocks at the same second: for tests and tools that have one clock.
    fn from(secs: UnixTime) -> Now {
        Now {
            mono: Mono(secs.saturating_mul(1000)),
            wall: secs,
        }
    }
}

/// A step of the wall clock against the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Seconds the wall clock jumped (negative: backwards).
    pub secs: i64,
}

/// Reads both clocks; reports a wall-clock step when the wall time moved more
/// than [`Clock::STEP_TOLERANCE`] away from what the monotonic clock says passed.
#[derive(Debug)]
pub struct Clock {
    last: Option<(Mono, i128)>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// How far the two clocks may drift apart between readings before it is a step.
    pub const STEP_TOLERANCE: Duration = Duration::from_secs(2);

    /// A clock with no reading yet.
    pub fn new() -> Clock {
        Clock { last: None }
    }

    /// The monotonic clock alone.
    pub fn mono() -> Mono {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec, which lives for the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        assert_eq!(rc, 0, "CLOCK_MONOTONIC is always readable");
        Mono(ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000)
    }

    /// Reads both clocks; the step, if the wall clock stepped since the last read.
    pub fn read(&mut self) -> (Now, Option<Step>) {
        let mono = Self::mono();
        let wall_ms: i128 = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)
        {
            Ok(d) => d.as_millis() as i128,
            Err(e) => -(e.duration().as_millis() as i128),
        };
        let step = self.last.and_then(|(m, w)| {
            let expected = w + i128::from(mono.0.saturating_sub(m.0));
            let off = wall_ms - expected;
            (off.unsigned_abs() > Self::STEP_TOLERANCE.as_millis()).then_some(Step {
                secs: (off / 1000) as i64,
            })
        });
        self.last = Some((mono, wall_ms));
        let wall = u64::try_from(wall_ms / 1000).unwrap_or(0);
        (Now { mono, wall }, step)
    }
}

/// A wall clock that never runs backwards and is never earlier than a floor:
/// `max(system wall, floor + monotonic time since the floor was set)`. Records
/// are stamped with it, so a clock that boots in 1970 or steps back writes
/// nothing that would expire a lease early once the clock is right.
#[derive(Debug, Clone, Copy)]
pub struct TrustedWall {
    anchor_wall: UnixTime,
    anchor_mono: Mono,
}

impl TrustedWall {
    /// Starts at `floor` (the newest record on flash, or [`NOT_BEFORE`]) at `now`.
    pub fn new(floor: UnixTime, now: Now) -> TrustedWall {
        let mut t = TrustedWall {
            anchor_wall: floor.max(NOT_BEFORE),
            anchor_mono: now.mono,
        };
        t.observe(now);
        t
    }

    /// The trusted wall time at `now`; moves the anchor forward.
    pub fn observe(&mut self, now: Now) -> UnixTime {
        let est = self
            .anchor_wall
            .saturating_add(now.mono.since(self.anchor_mono).as_secs());
        if now.wall >= est {
            self.anchor_wall = now.wall;
            self.anchor_mono = now.mono;
            now.wall
        } else {
            est
        }
    }

    /// Whether the system wall clock itself is believed at `now`: not behind the
    /// floor and not stepped back (more than [`Clock::STEP_TOLERANCE`]).
    pub fn believes(&self, now: Now) -> bool {
        let est = self
            .anchor_wall
            .saturating_add(now.mono.since(self.anchor_mono).as_secs());
        now.wall.saturating_add(Clock::STEP_TOLERANCE.as_secs()) >= est
    }

    /// The trusted wall time at `now`, without moving the anchor.
    pub fn at(&self, now: Now) -> UnixTime {
        self.anchor_wall
            .saturating_add(now.mono.since(self.anchor_mono).as_secs())
            .max(now.wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_wall_ignores_a_clock_behind_the_floor_and_runs_on_mono() {
        let floor = NOT_BEFORE + 1000;
        let mut t = TrustedWall::new(
            floor,
            Now {
                mono: Mono(5_000),
                wall: 0,
            },
        );
        let at = |mono_s: u64, wall: u64| Now {
            mono: Mono(mono_s * 1000),
            wall,
        };
        assert_eq!(t.observe(at(5, 0)), floor);
        assert_eq!(t.observe(at(65, 60)), floor + 60);
        // NTP syncs: the clock jumps forward and is believed.
        assert_eq!(t.observe(at(70, floor + 5000)), floor + 5000);
        // A step back of a day is not.
        assert_eq!(t.observe(at(80, floor + 5010 - 86_400)), floor + 5010);
    }

    #[test]
    fn clock_reports_no_step_between_two_quick_reads() {
        let mut c = Clock::new();
        let (a, s1) = c.read();
        let (b, s2) = c.read();
        assert_eq!((s1, s2), (None, None));
        assert!(b.mono >= a.mono);
    }
}
