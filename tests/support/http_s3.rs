//! Talking to S3 directly with presigned requests, as a browser does.

use reqwest::StatusCode;
use serde_json::Value;

/// Sends a request presigned by `POST /s3/sign` as the browser would: the
/// signed headers and the body. Status and body text.
pub async fn send_signed(signed: &Value, method: &str, body: Vec<u8>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().request(
        method.parse().expect("an HTTP method"),
        signed["url"].as_str().expect("a url"),
    );
    for (name, value) in signed["headers"].as_object().into_iter().flatten() {
        request = request.header(name.as_str(), value.as_str().expect("a header value"));
    }
    let response = request.body(body).send().await.expect("S3 request");
    (response.status(), response.text().await.expect("S3 reply"))
}

/// The text of the first `<tag>` of an S3 XML reply.
pub fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let from = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let to = from + xml[from..].find("</").expect("a closing tag");
    xml[from..to].to_owned()
}

/// PUTs bytes to a presigned URL as a browser or script would; the ETag.
pub async fn put_to(url: &str, bytes: Vec<u8>, headers: &[(&str, &str)]) -> String {
    let mut request = reqwest::Client::new()
        .put(url)
        .header("content-type", "application/octet-stream");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.body(bytes).send().await.expect("PUT to S3");
    assert!(
        response.status().is_success(),
        "PUT {url}: {}",
        response.status()
    );
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("ETag header")
        .to_owned()
}

/// `value` with every presigned URL in it stripped of its signing time,
/// scope date and signature: views read a second apart sign the same
/// objects with different ones.
pub fn unsigned(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const TIME_BOUND: [&str; 3] = ["X-Amz-Date", "X-Amz-Signature", "X-Amz-Credential"];
    match value {
        Value::String(url) if url.contains("X-Amz-Signature=") => {
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let kept: Vec<_> = query
                .split('&')
                .filter(|pair| {
                    !TIME_BOUND
                        .iter()
                        .any(|name| pair.starts_with(&format!("{name}=")))
                })
                .collect();
            Value::String(format!("{path}?{}", kept.join("&")))
        }
        Value::Array(items) => Value::Array(items.iter().map(unsigned).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), unsigned(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
