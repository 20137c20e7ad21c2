//! How long a connection has been quiet, without a clock read per frame:
//! activity only sets a flag, and a timer that looks every so often moves
//! the start of the quiet to when it saw the flag. Keepalive (how long
//! since the peer was heard from) and idleness (how long since a call)
//! both keep time this way.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Far enough away to be never.
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// A quiet timer; see the module docs.
#[derive(Debug)]
pub(crate) struct Quiet {
    active: bool,
    since: Instant,
    every: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Quiet {
    /// A timer that looks every `every` (`None`: never), quiet from now.
    pub(crate) fn new(every: Option<Duration>) -> Self {
        let every = every.map_or(FAR, |every| every.max(Duration::from_millis(1)));
        let since = Instant::now();
        Quiet {
            active: false,
            since,
            every,
            timer: Box::pin(tokio::time::sleep_until(later(since, every))),
        }
    }

    /// Something happened: the quiet is over (as of the next look).
    pub(crate) fn touch(&mut self) {
        self.active = true;
    }

    /// Waits for the next look; returns its time and whether there was
    /// activity since the last one.
    pub(crate) async fn look(&mut self) -> (Instant, bool) {
        self.timer.as_mut().await;
        let now = Instant::now();
        let active = std::mem::take(&mut self.active);
        if active {
            self.since = now;
        }
        self.timer.as_mut().reset(later(now, self.every));
        (now, active)
    }

    /// How long it has been quiet at `now` (a time [`look`](Self::look)
    /// returned).
    pub(crate) fn quiet_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }

    /// Counts the quiet from `now` again.
    pub(crate) fn restart(&mut self, now: Instant) {
        self.since = now;
    }
}

fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by).unwrap_or(now + FAR)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Quiet;

    #[tokio::test(start_paused = true)]
    async fn quiet_counts_from_the_look_that_saw_activity() {
        let ms = Duration::from_millis;
        let mut quiet = Quiet::new(Some(ms(10)));
        let (first, active) = quiet.look().await;
        assert!(!active);
        assert_eq!(quiet.quiet_for(first), ms(10));
        quiet.touch();
        let (second, active) = quiet.look().await;
        assert!(active, "the touch was seen");
        assert_eq!(quiet.quiet_for(second), ms(0));
        let (third, _) = quiet.look().await;
        assert_eq!(quiet.quiet_for(third), ms(10));
        quiet.restart(third);
        assert_eq!(quiet.quiet_for(third), ms(0));
    }
}
