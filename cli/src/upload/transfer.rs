//! Part URLs (signed in batches as they are needed, re-signed before they
//! expire) and the part PUTs themselves, streamed from the file.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::CONTENT_LENGTH;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::plan::ranges;
use crate::api::Api;
use crate::checksum::Checksum;
use crate::error::{CliError, Result, storage_error};
use crate::progress::FileProgress;
use crate::rate::RateLimit;

/// URLs per signing call: the API signs up to 500; a batch ahead of the
/// workers is enough and keeps URLs fresh.
const BATCH: usize = 100;
const CHUNK: usize = 256 << 10;

pub struct Signer<'a> {
    api: &'a Api,
    file_id: String,
    grant: Option<String>,
    /// Part → URL and when it was signed.
    cache: tokio::sync::Mutex<HashMap<u32, (String, Instant)>>,
    expires_in: std::sync::Mutex<Duration>,
}

impl<'a> Signer<'a> {
    pub fn new(api: &'a Api, file_id: &str, grant: Option<String>) -> Self {
        Self {
            api,
            file_id: file_id.to_owned(),
            grant,
            cache: tokio::sync::Mutex::new(HashMap::new()),
            expires_in: std::sync::Mutex::new(Duration::from_secs(3600)),
        }
    }

    /// Keeps the URLs of a reply (`presigned_urls`, `expires_in`).
    pub async fn keep(&self, reply: &Value) {
        self.keep_in(&mut *self.cache.lock().await, reply);
    }

    fn keep_in(&self, cache: &mut HashMap<u32, (String, Instant)>, reply: &Value) {
        let signed = Instant::now();
        if let Some(secs) = reply["expires_in"].as_u64() {
            *self.expires_in.lock().expect("expiry") = Duration::from_secs(secs);
        }
        for url in reply["presigned_urls"].as_array().into_iter().flatten() {
            if let (Some(n), Some(u)) = (url["part_number"].as_u64(), url["url"].as_str()) {
                cache.insert(n as u32, (u.to_owned(), signed));
            }
        }
    }

    /// A URL for part `n` that will not expire before the PUT starts. With
    /// a checksum only that part is signed (the URL signs its checksum);
    /// otherwise the next batch of `upcoming` with it.
    pub async fn url(&self, n: u32, checksum: Option<&str>, upcoming: &[u32]) -> Result<String> {
        let ttl = *self.expires_in.lock().expect("expiry");
        let margin = (ttl / 4).min(Duration::from_secs(120));
        // Held while signing: workers that need the same batch wait for it.
        let mut cache = self.cache.lock().await;
        if let Some((url, signed)) = cache.get(&n)
            && signed.elapsed() + margin < ttl
        {
            return Ok(url.clone());
        }
        let batch: Vec<u32> = match checksum {
            Some(_) => vec![n],
            None => std::iter::once(n)
                .chain(upcoming.iter().copied().filter(|m| *m > n))
                .take(BATCH)
                .collect(),
        };
        let mut query = vec![("part_numbers", ranges(&batch))];
        if let Some(grant) = &self.grant {
            query.push(("grant", grant.clone()));
        }
        if let Some(checksum) = checksum {
            query.push(("checksums", checksum.to_owned()));
        }
        let reply = self
            .api
            .get(&format!("/v1/files/uploads/{}/parts", self.file_id), &query)
            .await?;
        self.keep_in(&mut cache, &reply);
        cache
            .get(&n)
            .map(|(url, _)| url.clone())
            .ok_or_else(|| CliError::failure(format!("the API signed no URL for part {n}")))
    }

    /// Drops a URL storage refused (expired), so the next call signs anew.
    pub async fn forget(&self, n: u32) {
        self.cache.lock().await.remove(&n);
    }
}

/// One part's bytes: where in which file.
#[derive(Debug, Clone)]
pub struct Part {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub checksum: Option<(Checksum, String)>,
}

pub enum PutError {
    /// Storage refused the signature (expired URL): sign again.
    Refused(CliError),
    /// Network trouble, throttling, a storage hiccup: send again.
    Transient(CliError),
    Fatal(CliError),
}

/// PUTs `part` to `url` as it reads it (paced by `rate`, counted in
/// `progress`); the ETag S3 answers. A failed attempt's bytes are taken
/// off the progress again.
pub async fn put_part(
    http: &reqwest::Client,
    url: &str,
    part: &Part,
    progress: &Arc<FileProgress>,
    rate: Option<&Arc<RateLimit>>,
) -> Result<String, PutError> {
    let counted = Arc::new(AtomicU64::new(0));
    let body = body_stream(part, progress.clone(), rate.cloned(), counted.clone())
        .await
        .map_err(PutError::Fatal)?;
    let mut request = http
        .put(url)
        // The URL signs the length: S3 wants it, not a chunked body.
        .header(CONTENT_LENGTH, part.len)
        .body(body);
    if let Some((kind, value)) = &part.checksum {
        request = request.header(kind.header(), value);
    }
    let outcome = match request.send().await {
        Err(e) => Err(PutError::Transient(CliError::network(
            "sending the part",
            e,
        ))),
        Ok(response) if response.status().is_success() => response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                PutError::Fatal(CliError::failure(
                    "storage answered without an ETag (does the bucket's CORS expose it?)",
                ))
            }),
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let err = storage_error(status, &body);
            // S3's 400s for a slow or garbled request are worth another try.
            let retryable_400 = ["RequestTimeout", "BadDigest", "IncompleteBody"]
                .iter()
                .any(|code| body.contains(&format!("<Code>{code}</Code>")));
            Err(match status {
                StatusCode::FORBIDDEN => PutError::Refused(err),
                s if s.is_server_error()
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s == StatusCode::REQUEST_TIMEOUT
                    || retryable_400 =>
                {
                    PutError::Transient(err)
                }
                _ => PutError::Fatal(err),
            })
        }
    };
    if outcome.is_err() {
        progress.undo(counted.load(Ordering::Relaxed));
    }
    outcome
}

/// The part's bytes as a stream of chunks read from the file.
async fn body_stream(
    part: &Part,
    progress: Arc<FileProgress>,
    rate: Option<Arc<RateLimit>>,
    counted: Arc<AtomicU64>,
) -> Result<reqwest::Body> {
    let mut file = tokio::fs::File::open(&part.path)
        .await
        .map_err(|e| read_error(&part.path, e))?;
    file.seek(SeekFrom::Start(part.offset))
        .await
        .map_err(|e| read_error(&part.path, e))?;
    let chunk = rate.as_ref().map_or(CHUNK, |r| {
        (r.bytes_per_sec() / 16).clamp(4 << 10, CHUNK as u64) as usize
    });
    let stream = futures_util::stream::try_unfold((file, part.len), move |(mut file, left)| {
        let (progress, rate, counted) = (progress.clone(), rate.clone(), counted.clone());
        async move {
            if left == 0 {
                return Ok(None);
            }
            let mut buf = vec![0u8; chunk.min(left as usize)];
            file.read_exact(&mut buf).await?;
            if let Some(rate) = &rate {
                rate.take(buf.len() as u64).await;
            }
            progress.add(buf.len() as u64);
            counted.fetch_add(buf.len() as u64, Ordering::Relaxed);
            let left = left - buf.len() as u64;
            Ok::<_, std::io::Error>(Some((bytes::Bytes::from(buf), (file, left))))
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

fn read_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::usage(format!("{}: {e}", path.display()))
}

/// A part's checksum, read from the file (off the async threads).
pub async fn part_checksum(part: &Part, kind: Checksum) -> Result<String> {
    let part = part.clone();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&part.path).map_err(|e| read_error(&part.path, e))?;
        file.seek(SeekFrom::Start(part.offset))
            .map_err(|e| read_error(&part.path, e))?;
        let mut hasher = kind.hasher();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = part.len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            file.read_exact(&mut buf[..want])
                .map_err(|e| read_error(&part.path, e))?;
            hasher.update(&buf[..want]);
            left -= want as u64;
        }
        Ok(hasher.finish())
    })
    .await
    .map_err(|e| CliError::failure(format!("checksum task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Output;
    use tokio::io::AsyncWriteExt;

    /// The PUT carries `Content-Length` (the URL signs it; S3 refuses a
    /// chunked part) and exactly the part's bytes of the file.
    #[tokio::test]
    async fn a_part_is_sent_with_its_length_and_only_its_bytes() {
        let dir = std::env::temp_dir().join(format!("assetbox-cli-put-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.bin");
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .expect("a content-length header");
                    if got.len() >= head_end + 4 + len {
                        break;
                    }
                }
                assert!(n > 0, "the client closed early");
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            got
        });

        let part = Part {
            path: path.clone(),
            offset: 300_000,
            len: 300_000,
            checksum: Some((Checksum::Crc32, "AAAAAA==".into())),
        };
        let progress = Arc::new(Output::new(false).file("data.bin", data.len() as u64));
        let etag = put_part(
            &reqwest::Client::new(),
            &format!("http://{addr}/part?X-Amz-Signature=s"),
            &part,
            &progress,
            None,
        )
        .await
        .unwrap_or_else(|_| panic!("the PUT failed"));
        assert_eq!(etag, "\"abc\"");
        let request = server.await.unwrap();
        let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
        assert!(head.contains("content-length: 300000"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.contains("x-amz-checksum-crc32: aaaaaa=="), "{head}");
        assert!(request[head_end + 4..] == data[300_000..600_000]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
