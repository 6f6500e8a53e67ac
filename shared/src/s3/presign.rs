//! Presigned S3 URLs (SigV4, query-string auth).
//!
//! Why not the SDK's presigner: it runs the whole request pipeline for every
//! URL (tens of microseconds each) and cannot sign a `Content-Length` for an
//! UploadPart. A presigned S3 URL has one fixed shape, so we build its
//! canonical request here and use `aws-sigv4`'s own primitives for the signing
//! key (derived once per batch, not once per URL) and the signature. A unit test
//! checks the result against the worked example of the S3 documentation and
//! against `aws-sigv4`'s general signer.
//!
//! What a signed header buys: S3 refuses a PUT whose `Content-Length` or
//! `x-amz-checksum-*` differs from the signed value, so a client cannot upload
//! a part of another size than the one it was granted. (The local emulator does
//! not check signatures at all; see the tests here for our side.)

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// RFC 3986 unreserved characters stay as they are; everything else is
/// percent-encoded, as SigV4 requires for query names and values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// In paths `/` separates segments and is kept.
const PATH: &AsciiSet = &QUERY_VALUE.remove(b'/');

/// S3 presigned URLs live at most 7 days.
pub const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the bucket's objects are addressed.
#[derive(Debug, Clone)]
pub enum BucketEndpoint {
    /// `https://<bucket>.<domain>/<key>` (AWS: `s3.<region>.amazonaws.com`).
    VirtualHosted { domain: String },
    /// `<endpoint>/<bucket>/<key>`: an emulator or custom endpoint, path-style
    /// like the SDK client configured for it.
    PathStyle { scheme: String, authority: String },
}

impl BucketEndpoint {
    /// From the SDK's endpoint override (`AWS_ENDPOINT_URL`): present means
    /// an emulator, which only understands path-style addressing.
    pub fn from_endpoint_url(endpoint: Option<&str>, region: &str) -> Result<Self, String> {
        let Some(url) = endpoint else {
            return Ok(Self::VirtualHosted {
                domain: format!("s3.{region}.amazonaws.com"),
            });
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("endpoint url {url:?}: {e}"))?;
        match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => Ok(Self::PathStyle {
                scheme: scheme.to_owned(),
                authority: authority.to_string(),
            }),
            _ => Err(format!("endpoint url {url:?} needs a scheme and host")),
        }
    }
}

/// A request to presign. Header names are lower-case and become signed
/// headers: the client must send exactly these values.
#[derive(Debug, Default)]
pub struct ObjectRequest<'a> {
    pub method: &'a str,
    pub key: &'a str,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
}

/// Signs URLs for one bucket with one set of credentials at one moment.
/// Build one per request: the signing key is derived once and reused.
pub struct Presigner {
    bucket: String,
    region: String,
    endpoint: BucketEndpoint,
    access_key_id: String,
    session_token: Option<String>,
    signing_key: Vec<u8>,
    /// `YYYYMMDDTHHMMSSZ` and `YYYYMMDD/<region>/s3/aws4_request`.
    amz_date: String,
    credential_scope: String,
}

impl Presigner {
    pub fn new(
        bucket: &str,
        region: &str,
        endpoint: BucketEndpoint,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Self {
        let at = time::OffsetDateTime::from(now);
        let date = format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day());
        let amz_date = format!(
            "{date}T{:02}{:02}{:02}Z",
            at.hour(),
            at.minute(),
            at.second()
        );
        let signing_key = aws_sigv4::sign::v4::generate_signing_key(
            credentials.secret_access_key(),
            now,
            region,
            "s3",
        )
        .as_ref()
        .to_vec();
        Self {
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            endpoint,
            access_key_id: credentials.access_key_id().to_owned(),
            session_token: credentials.session_token().map(str::to_owned),
            signing_key,
            credential_scope: format!("{date}/{region}/s3/aws4_request"),
            amz_date,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    fn host_and_path(&self, key: &str) -> (String, String, &str) {
        let key = utf8_percent_encode(key, PATH);
        match &self.endpoint {
            BucketEndpoint::VirtualHosted { domain } => (
                format!("{}.{domain}", self.bucket),
                format!("/{key}"),
                "https",
            ),
            BucketEndpoint::PathStyle { scheme, authority } => (
                authority.clone(),
                format!("/{}/{key}", utf8_percent_encode(&self.bucket, PATH)),
                scheme.as_str(),
            ),
        }
    }

    /// The object's unsigned URL (what S3 calls its location).
    pub fn object_url(&self, key: &str) -> String {
        let (host, path, scheme) = self.host_and_path(key);
        format!("{scheme}://{host}{path}")
    }

    /// A presigned URL valid for `expires` (capped at S3's 7 days).
    pub fn presign(&self, request: &ObjectRequest<'_>, expires: Duration) -> String {
        let (host, path, scheme) = self.host_and_path(request.key);
        let expires = expires.min(MAX_EXPIRY).as_secs().max(1);

        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(request.headers.len() + 1);
        headers.push(("host", host.as_str()));
        headers.extend(request.headers.iter().map(|(k, v)| (*k, v.trim())));
        headers.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let signed_headers = headers
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(";");

        let mut query: Vec<(String, String)> = Vec::with_capacity(request.query.len() + 7);
        let mut add = |name: &str, value: &str| {
            query.push((
                utf8_percent_encode(name, QUERY_VALUE).to_string(),
                utf8_percent_encode(value, QUERY_VALUE).to_string(),
            ));
        };
        add("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
        add(
            "X-Amz-Credential",
            &format!("{}/{}", self.access_key_id, self.credential_scope),
        );
        add("X-Amz-Date", &self.amz_date);
        add("X-Amz-Expires", &expires.to_string());
        add("X-Amz-SignedHeaders", &signed_headers);
        if let Some(token) = &self.session_token {
            add("X-Amz-Security-Token", token);
        }
        for (name, value) in &request.query {
            add(name, value);
        }
        query.sort_unstable();
        let mut canonical_query = String::with_capacity(512);
        for (i, (name, value)) in query.iter().enumerate() {
            if i > 0 {
                canonical_query.push('&');
            }
            canonical_query.push_str(name);
            canonical_query.push('=');
            canonical_query.push_str(value);
        }

        let mut canonical = String::with_capacity(768);
        let _ = write!(canonical, "{}\n{path}\n{canonical_query}\n", request.method);
        for (name, value) in &headers {
            let _ = writeln!(canonical, "{name}:{value}");
        }
        let _ = write!(canonical, "\n{signed_headers}\nUNSIGNED-PAYLOAD");

        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{}\n{}",
            self.amz_date,
            self.credential_scope,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let signature =
            aws_sigv4::sign::v4::calculate_signature(&self.signing_key, string_to_sign.as_bytes());
        format!("{scheme}://{host}{path}?{canonical_query}&X-Amz-Signature={signature}")
    }
}

/// `Content-Disposition` for a download, per RFC 6266/5987: an ASCII fallback
/// `filename` plus the exact UTF-8 name in `filename*`.
pub fn attachment_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(file_name, QUERY_VALUE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> Credentials {
        // The documented example key pair of the AWS SigV4 docs, not a secret.
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        )
    }

    fn at(rfc3339: &str) -> SystemTime {
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .into()
    }

    /// The worked example "Example: A presigned URL" of the S3 SigV4
    /// query-string authentication docs: GET /test.txt on bucket
    /// `examplebucket`, 2013-05-24T00:00:00Z, 86400 s.
    #[test]
    fn matches_the_s3_documentation_example() {
        let signer = Presigner::new(
            "examplebucket",
            "us-east-1",
            BucketEndpoint::VirtualHosted {
                domain: "s3.amazonaws.com".into(),
            },
            &example_credentials(),
            at("2013-05-24T00:00:00Z"),
        );
        let url = signer.presign(
            &ObjectRequest {
                method: "GET",
                key: "test.txt",
                ..Default::default()
            },
            Duration::from_secs(86400),
        );
        assert!(url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"));
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    /// Our canonical request agrees with aws-sigv4's general signer for a part
    /// upload with signed length and checksum, and a session token.
    #[test]
    fn agrees_with_aws_sigv4_for_a_part_upload() {
        use aws_sigv4::http_request::{
            PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
            UriPathNormalizationMode, sign,
        };
        let credentials =
            Credentials::new("AKIDEXAMPLE", "secret", Some("tok/en+=".into()), None, "t");
        let now = at("2026-11-23T10:11:12Z");
        let signer = Presigner::new(
            "media",
            "eu-west-1",
            BucketEndpoint::PathStyle {
                scheme: "http".into(),
                authority: "127.0.0.1:4566".into(),
            },
            &credentials,
            now,
        );
        let request = ObjectRequest {
            method: "PUT",
            key: "uploads/u-1/01J/original.png",
            query: vec![("partNumber", "7".into()), ("uploadId", "a+b/c=d".into())],
            headers: vec![
                ("content-length", "5242880".into()),
                (
                    "x-amz-checksum-sha256",
                    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into(),
                ),
            ],
        };
        let ours = signer.presign(&request, Duration::from_secs(900));

        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(900));
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = "http://127.0.0.1:4566/media/uploads/u-1/01J/original.png?partNumber=7&uploadId=a%2Bb%2Fc%3Dd";
        let headers = [
            ("host", "127.0.0.1:4566"),
            ("content-length", "5242880"),
            (
                "x-amz-checksum-sha256",
                "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            ),
        ];
        let signable = SignableRequest::new(
            "PUT",
            uri,
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .unwrap();
        let (_, params) = sign(signable, &params).unwrap().into_parts().0.into_parts();
        let theirs = params
            .iter()
            .find(|(k, _)| *k == "X-Amz-Signature")
            .map(|(_, v)| v.to_string())
            .unwrap();
        assert!(
            ours.ends_with(&format!("X-Amz-Signature={theirs}")),
            "{ours} vs {theirs}"
        );
        assert!(ours.contains("X-Amz-SignedHeaders=content-length%3Bhost%3Bx-amz-checksum-sha256"));
        assert!(ours.contains("X-Amz-Expires=900"));
        assert!(ours.contains("X-Amz-Security-Token=tok%2Fen%2B%3D"));
    }

    #[test]
    fn expiry_is_capped_at_seven_days() {
        let signer = Presigner::new(
            "b",
            "us-east-1",
            BucketEndpoint::from_endpoint_url(None, "us-east-1").unwrap(),
            &example_credentials(),
            SystemTime::now(),
        );
        let url = signer.presign(
            &ObjectRequest {
                method: "GET",
                key: "k",
                ..Default::default()
            },
            Duration::from_secs(30 * 24 * 3600),
        );
        assert!(url.contains("X-Amz-Expires=604800"));
    }

    #[test]
    fn disposition_keeps_unicode_names() {
        assert_eq!(
            attachment_disposition("Szene 1 – Köln \"final\".png"),
            "attachment; filename=\"Szene 1 _ K_ln _final_.png\"; filename*=UTF-8''Szene%201%20%E2%80%93%20K%C3%B6ln%20%22final%22.png"
        );
    }
}
