//! `--limit-rate`: one budget for every transfer of the run, paced per
//! chunk (a chunk waits until the total sent so far is due at the rate).

use std::time::Duration;

use tokio::time::Instant;

/// How much idle time may be caught up in a burst.
const MAX_CREDIT: Duration = Duration::from_secs(1);

pub struct RateLimit {
    bytes_per_sec: u64,
    state: std::sync::Mutex<(Instant, u64)>,
}

impl RateLimit {
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec: bytes_per_sec.max(1),
            state: std::sync::Mutex::new((Instant::now(), 0)),
        }
    }

    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Waits until `bytes` more may go out.
    pub async fn take(&self, bytes: u64) {
        let due = {
            let mut state = self.state.lock().expect("rate state");
            let now = Instant::now();
            let (start, sent) = &mut *state;
            let at_rate =
                |sent: u64| Duration::from_secs_f64(sent as f64 / self.bytes_per_sec as f64);
            if *start + at_rate(*sent) + MAX_CREDIT < now {
                *start = now - MAX_CREDIT;
                *sent = 0;
            }
            *sent += bytes;
            *start + at_rate(*sent)
        };
        tokio::time::sleep_until(due).await;
    }
}

/// `1048576`, `512K`, `1M`, `1.5M`, `2G` (binary multiples, as curl reads them).
pub fn parse_rate(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, ""),
    };
    let factor: u64 = match unit
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("unknown unit in {raw:?}: use K, M or G")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a rate in bytes per second"))?;
    let bytes = (value * factor as f64) as u64;
    if !value.is_finite() || bytes == 0 {
        return Err(format!(
            "{raw:?}: the rate must be at least 1 byte per second"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_curls() {
        assert_eq!(parse_rate("1048576"), Ok(1 << 20));
        assert_eq!(parse_rate("512K"), Ok(512 << 10));
        assert_eq!(parse_rate("1.5M"), Ok(3 << 19));
        assert_eq!(parse_rate("2GiB"), Ok(2 << 30));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3X").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_are_paced_at_the_rate_across_callers() {
        let limit = RateLimit::new(1000);
        let start = Instant::now();
        for _ in 0..4 {
            limit.take(500).await;
        }
        // 2000 bytes at 1000 B/s: due at 2 s (the paused clock only moves
        // when every task sleeps, so this is the schedule, not a timing).
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
