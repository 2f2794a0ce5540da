//! Retrying eAPI calls while EOS boots: it refuses connections, then answers 502 for
//! minutes before CommandApi is ready. Waiting for readiness replaces the recipe's
//! fixed 300 s sleep.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::EapiError;

/// Capped exponential backoff: `initial`, `initial * factor`, ... never above `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Growth per retry (values below 1 are treated as 1).
    pub factor: f64,
}

impl Default for Backoff {
    /// 250 ms doubling up to 10 s: quick once EOS is nearly up, quiet in syslog while it is not.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = self.factor.max(1.0);
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * factor.powi(exponent);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs).min(self.max)
        }
    }
}

/// Runs `op` until it succeeds, fails with an error that is not
/// [retryable](EapiError::is_retryable), or `deadline` passes; then returns the last
/// error. Each retry is logged in one line. The last attempt is made at the deadline,
/// so a deadline in the past still gets one attempt.
pub async fn retry_until<T, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    mut op: F,
) -> Result<T, EapiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EapiError>>,
{
    let mut retry = 0u32;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let now = Instant::now();
        if !error.is_retryable() || now >= deadline {
            return Err(error);
        }
        let delay = backoff.delay(retry).min(deadline - now);
        retry += 1;
        tracing::info!("eAPI not ready (attempt {retry}), retrying in {delay:?}: {error}");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn refused() -> EapiError {
        EapiError::ConnectionRefused {
            url: "http://localhost:8080/command-api".into(),
        }
    }

    #[test]
    fn schedule_grows_then_stays_at_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
        };
        let delays: Vec<u64> = (0..7)
            .map(|n| backoff.delay(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn odd_factors_do_not_shrink_or_overflow() {
        let flat = Backoff {
            initial: Duration::from_millis(300),
            max: Duration::from_secs(5),
            factor: 0.5,
        };
        assert_eq!(flat.delay(3), Duration::from_millis(300));
        let huge = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 1e300,
        };
        assert_eq!(huge.delay(5), Duration::from_secs(60));
        let default = Backoff::default();
        assert_eq!(default.delay(0), Duration::from_millis(250));
        assert_eq!(default.delay(10), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn succeeds_once_the_error_goes_away() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
        };
        let value = retry_until(start + Duration::from_secs(60), backoff, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 4 {
                    Err(refused())
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 4);
        // Slept 100 + 200 + 400 ms between the four calls.
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline_with_the_last_error() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
        };
        let err = retry_until(start + Duration::from_millis(1000), backoff, || {
            calls.set(calls.get() + 1);
            let status = 500 + calls.get();
            async move {
                Err::<(), _>(EapiError::HttpStatus {
                    url: "u".into(),
                    status: 502,
                    body: status.to_string(),
                })
            }
        })
        .await
        .unwrap_err();
        // Calls at 0, 100, 300, 700 and (capped to the deadline) 1000 ms.
        assert_eq!(calls.get(), 5);
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
        assert!(
            matches!(err, EapiError::HttpStatus { body, .. } if body == "505"),
            "the last error is returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_errors_that_will_not_go_away() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let err = retry_until(start + Duration::from_secs(60), Backoff::default(), || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(EapiError::malformed(None, "JSON", "garbage")) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(matches!(err, EapiError::Malformed { .. }));
    }
}
