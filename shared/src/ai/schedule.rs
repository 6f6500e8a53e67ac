//! When to ask a provider again. Providers ask for polls every 2–3 s in the
//! first 30 s, every 5–10 s up to two minutes, then every 15–30 s (notes on
//! the reference protocol); asking faster only earns 429s. A `Retry-After`
//! the provider sent wins when it is longer. SQS delays at most 900 s.

/// SQS's longest per-message delay.
pub const MAX_DELAY_SECS: u32 = 900;

/// The delay before the first poll after a submit.
pub const FIRST_POLL_SECS: u32 = 3;

/// The delay before the next poll, `elapsed_secs` after the submit.
pub fn next_poll_delay(elapsed_secs: u64, retry_after_secs: Option<u64>) -> u32 {
    let planned: u32 = match elapsed_secs {
        0..30 => 3,
        30..120 => 10,
        120..600 => 30,
        _ => 60,
    };
    let asked = retry_after_secs.map_or(0, |s| s.min(MAX_DELAY_SECS as u64) as u32);
    planned.max(asked).min(MAX_DELAY_SECS)
}

/// The delay before resubmitting a refused-but-not-queued submit (429, 455,
/// a refused connection): doubling from 5 s, capped, `Retry-After` honoured.
pub fn resubmit_delay(attempt: u32, retry_after_secs: Option<u64>) -> u32 {
    let planned = 5u32.saturating_mul(1 << attempt.saturating_sub(1).min(8));
    let asked = retry_after_secs.map_or(0, |s| s.min(MAX_DELAY_SECS as u64) as u32);
    planned.max(asked).min(MAX_DELAY_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The polls of a job that succeeds after `job_secs`, as elapsed times.
    fn polls_for(job_secs: u64) -> Vec<u64> {
        let mut at = FIRST_POLL_SECS as u64;
        let mut polls = vec![at];
        while at < job_secs {
            at += next_poll_delay(at, None) as u64;
            polls.push(at);
        }
        polls
    }

    #[test]
    fn polls_slow_down_as_the_job_ages() {
        assert_eq!(next_poll_delay(0, None), 3);
        assert_eq!(next_poll_delay(45, None), 10);
        assert_eq!(next_poll_delay(300, None), 30);
        assert_eq!(next_poll_delay(4000, None), 60);
        // A 60 s job: 10 polls in the first 30 s, then every 10 s.
        let polls = polls_for(60);
        assert_eq!(polls.len(), 13, "{polls:?}");
        assert!(polls.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn retry_after_wins_when_longer_and_nothing_exceeds_sqs() {
        assert_eq!(next_poll_delay(0, Some(20)), 20);
        assert_eq!(next_poll_delay(300, Some(1)), 30);
        assert_eq!(next_poll_delay(0, Some(86_400)), MAX_DELAY_SECS);
        assert_eq!(resubmit_delay(1, None), 5);
        assert_eq!(resubmit_delay(3, None), 20);
        assert_eq!(resubmit_delay(30, None), MAX_DELAY_SECS);
        assert_eq!(resubmit_delay(1, Some(61)), 61);
    }
}
