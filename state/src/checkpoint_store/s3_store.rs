//! Objects in an S3 bucket under a prefix (`s3://bucket/prefix`), with
//! aws-sdk-s3.
//!
//! The SDK is asynchronous and needs tokio; the store owns a one-thread tokio
//! runtime (`sluice-s3`), and each call blocks the calling thread — the
//! checkpoint driver's, never a shard's — until its request is done. Large
//! objects go up in parts (multipart upload; an upload that fails is aborted,
//! so no parts are left behind). Failed requests are retried by the SDK with
//! exponential backoff and jitter, within a per-attempt and per-call timeout,
//! so a call ends in bounded time even when the server is gone. Whole objects
//! are checked by the catalog (sizes and xxh3 in the manifest).
//!
//! Endpoint, region and credentials come from the job file when it gives them,
//! else from the standard AWS environment (`AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, … and `~/.aws`). Path-style addressing serves
//! S3-compatible servers. The secret key is never printed: [`S3Settings`]'s
//! `Debug` hides it and messages name only the bucket and key.

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::object_store::{check_key, put_streamed, ObjectStore, PendingPut, StoreError};

/// Objects at least this large are uploaded in parts of this size.
pub const MULTIPART_PART_BYTES: usize = 8 << 20;
/// Attempts per request (the first and the retries).
const ATTEMPTS: u32 = 4;
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and how to reach the bucket (`[checkpoint.s3]` in the job file).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Keys are `<prefix>/<key>` (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// `http://127.0.0.1:9000` for an S3-compatible server; `None`: AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `bucket` in the path instead of the host name.
    pub path_style: bool,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<hidden>"),
            )
            .field("path_style", &self.path_style)
            .finish()
    }
}

impl S3Settings {
    /// Parses `s3://bucket[/prefix]`.
    pub fn from_url(url: &str) -> Result<S3Settings, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "{url:?}: the bucket {bucket:?} is not a valid S3 bucket name (3 to 63 of a-z, 0-9, '-', '.')"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            check_key(prefix).map_err(|e| format!("{url:?}: the prefix: {e}"))?;
        }
        Ok(S3Settings {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            ..S3Settings::default()
        })
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        match self.prefix.is_empty() {
            true => format!("s3://{}", self.bucket),
            false => format!("s3://{}/{}", self.bucket, self.prefix),
        }
    }

    /// The same bucket, under `prefix/<sub>`.
    pub fn under(&self, sub: &str) -> S3Settings {
        let mut settings = self.clone();
        settings.prefix = match self.prefix.is_empty() {
            true => sub.to_owned(),
            false => format!("{}/{sub}", self.prefix),
        };
        settings
    }
}

/// See the module docs.
pub struct S3Store {
    settings: S3Settings,
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Runtime,
}

impl S3Store {
    /// Connects (lazily: no request is made until the first call).
    pub fn new(settings: S3Settings) -> Result<S3Store, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-s3")
            .enable_all()
            .build()
            .map_err(|e| format!("starting the S3 I/O thread: {e}"))?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(ATTEMPTS)
                    .with_initial_backoff(INITIAL_BACKOFF),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => {
                loader = loader.credentials_provider(Credentials::new(
                    id,
                    secret,
                    None,
                    None,
                    "sluice-job-file",
                ));
            }
            (None, None) => {}
            _ => {
                return Err(
                    "give both access_key_id and secret_access_key, or neither (then the AWS environment's are used)"
                        .into(),
                )
            }
        }
        let shared = runtime.block_on(loader.load());
        let mut config =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(settings.path_style);
        if shared.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        let client = aws_sdk_s3::Client::from_conf(config.build());
        Ok(S3Store {
            settings,
            client,
            runtime,
        })
    }

    fn object_key(&self, key: &str) -> Result<String, StoreError> {
        check_key(key)?;
        Ok(match self.settings.prefix.is_empty() {
            true => key.to_owned(),
            false => format!("{}/{key}", self.settings.prefix),
        })
    }

    /// A put whose earlier request failed (and was reported then).
    fn failed_earlier(&self, key: &str) -> StoreError {
        StoreError::Remote {
            what: "uploading",
            location: format!("{}/{key}", self.settings.url()),
            message: "an earlier part failed; the upload was aborted".into(),
        }
    }

    fn failed(&self, what: &'static str, key: &str, e: impl std::error::Error) -> StoreError {
        StoreError::Remote {
            what,
            location: format!("{}/{key}", self.settings.url()),
            message: DisplayErrorContext(e).to_string(),
        }
    }

    /// Sends the bytes buffered in `put` as its next part (starting the
    /// multipart upload with the first); on failure aborts the upload.
    fn send_part(&self, key: &str, put: &mut S3Put, bytes: Vec<u8>) -> Result<(), StoreError> {
        let bucket = &self.settings.bucket;
        let sent = self.runtime.block_on(async {
            let upload = match &put.upload {
                Some(upload) => upload.clone(),
                None => {
                    let created = (self.client.create_multipart_upload())
                        .bucket(bucket)
                        .key(&put.object)
                        .send()
                        .await
                        .map_err(|e| self.failed("starting a multipart upload of", key, e))?;
                    let upload = created.upload_id().unwrap_or_default().to_owned();
                    put.upload = Some(upload.clone());
                    upload
                }
            };
            let number = put.parts.len() as i32 + 1;
            let part = (self.client.upload_part())
                .bucket(bucket)
                .key(&put.object)
                .upload_id(&upload)
                .part_number(number)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| self.failed("uploading a part of", key, e))?;
            put.parts.push(
                CompletedPart::builder()
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .part_number(number)
                    .build(),
            );
            Ok(())
        });
        if sent.is_err() {
            self.abort_upload(put);
        }
        sent
    }

    /// Best effort: parts of an unfinished upload cost storage.
    fn abort_upload(&self, put: &mut S3Put) {
        put.failed = true;
        put.buffered = Vec::new();
        if let Some(upload) = put.upload.take() {
            let _ = self.runtime.block_on(
                (self.client.abort_multipart_upload())
                    .bucket(&self.settings.bucket)
                    .key(&put.object)
                    .upload_id(&upload)
                    .send(),
            );
        }
    }
}

/// An [`S3Store`] put in progress: objects below [`MULTIPART_PART_BYTES`]
/// go up in one request at the end; larger ones in parts of that size as
/// their bytes come (a multipart upload, begun with the first part).
struct S3Put {
    object: String,
    upload: Option<String>,
    parts: Vec<CompletedPart>,
    /// Bytes not sent yet (less than a part, between calls).
    buffered: Vec<u8>,
    /// A request failed: the upload was aborted.
    failed: bool,
}

impl ObjectStore for S3Store {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_chunks(key, &[bytes])
    }

    fn put_chunks(&self, key: &str, chunks: &[&[u8]]) -> Result<(), StoreError> {
        put_streamed(self, key, chunks)
    }

    fn begin_put(&self, key: &str) -> Result<PendingPut, StoreError> {
        let object = self.object_key(key)?;
        Ok(PendingPut::new(
            key,
            S3Put {
                object,
                upload: None,
                parts: Vec::new(),
                buffered: Vec::new(),
                failed: false,
            },
        ))
    }

    fn append_put(&self, pending: &mut PendingPut, mut bytes: &[u8]) -> Result<(), StoreError> {
        let key = pending.key().to_owned();
        let put = pending.state_mut::<S3Put>();
        if put.failed {
            return Err(self.failed_earlier(&key));
        }
        while put.buffered.len() + bytes.len() >= MULTIPART_PART_BYTES {
            let (head, rest) = bytes.split_at(MULTIPART_PART_BYTES - put.buffered.len());
            let mut part = std::mem::take(&mut put.buffered);
            part.extend_from_slice(head);
            bytes = rest;
            self.send_part(&key, put, part)?;
        }
        put.buffered.extend_from_slice(bytes);
        Ok(())
    }

    fn finish_put(&self, pending: PendingPut) -> Result<(), StoreError> {
        let key = pending.key().to_owned();
        let mut put = pending.into_state::<S3Put>();
        if put.failed {
            return Err(self.failed_earlier(&key));
        }
        let bucket = &self.settings.bucket;
        if put.upload.is_none() {
            let body = std::mem::take(&mut put.buffered);
            return self.runtime.block_on(async {
                (self.client.put_object())
                    .bucket(bucket)
                    .key(&put.object)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.failed("uploading", &key, e))
            });
        }
        if !put.buffered.is_empty() {
            let last = std::mem::take(&mut put.buffered);
            self.send_part(&key, &mut put, last)?;
        }
        let upload = put.upload.clone().unwrap_or_default();
        let parts = std::mem::take(&mut put.parts);
        let completed = self.runtime.block_on(async {
            (self.client.complete_multipart_upload())
                .bucket(bucket)
                .key(&put.object)
                .upload_id(&upload)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.failed("completing the multipart upload of", &key, e))
        });
        if completed.is_err() {
            self.abort_upload(&mut put);
        }
        completed
    }

    fn abort_put(&self, pending: PendingPut) {
        let mut put = pending.into_state::<S3Put>();
        self.abort_upload(&mut put);
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let object = self.object_key(key)?;
        self.runtime.block_on(async {
            let response = (self.client.get_object())
                .bucket(&self.settings.bucket)
                .key(&object)
                .send()
                .await
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                        StoreError::NotFound {
                            store: self.describe(),
                            key: key.to_owned(),
                        }
                    } else {
                        self.failed("downloading", key, e)
                    }
                })?;
            let body = response
                .body
                .collect()
                .await
                .map_err(|e| self.failed("downloading", key, e))?;
            Ok(body.into_bytes().to_vec())
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let strip = match self.settings.prefix.is_empty() {
            true => String::new(),
            false => format!("{}/", self.settings.prefix),
        };
        let full = format!("{strip}{prefix}");
        self.runtime.block_on(async {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            // Bounded: a listing that never ends is an error, not a hang.
            for _ in 0..100_000 {
                let page = (self.client.list_objects_v2())
                    .bucket(&self.settings.bucket)
                    .prefix(&full)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.failed("listing", prefix, e))?;
                for object in page.contents() {
                    if let Some(key) = object.key().and_then(|k| k.strip_prefix(&strip)) {
                        keys.push(key.to_owned());
                    }
                }
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated().unwrap_or(false) => {
                        token = Some(next.to_owned())
                    }
                    _ => {
                        keys.sort();
                        return Ok(keys);
                    }
                }
            }
            Err(StoreError::Remote {
                what: "listing",
                location: format!("{}/{prefix}", self.settings.url()),
                message: "more than 100000 pages".into(),
            })
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let object = self.object_key(key)?;
        self.runtime.block_on(async {
            (self.client.delete_object())
                .bucket(&self.settings.bucket)
                .key(&object)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.failed("deleting", key, e))
        })
    }

    fn describe(&self) -> String {
        self.settings.url()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::checkpoint_store::s3_test_server::{S3TestServer, SECRET_KEY};

    fn server() -> S3TestServer {
        let server = S3TestServer::start().unwrap();
        server.create_bucket("bucket").unwrap();
        server
    }

    #[test]
    fn puts_gets_lists_and_deletes_under_its_prefix() {
        let server = server();
        let store = S3Store::new(server.settings("bucket", "jobs/a")).unwrap();
        let other = S3Store::new(server.settings("bucket", "jobs/b")).unwrap();
        store.put("shared/x", b"one").unwrap();
        store.put("checkpoints/1/MANIFEST", b"m").unwrap();
        other.put("shared/x", b"another job").unwrap();
        store.put("shared/x", b"two").unwrap();
        assert_eq!(store.get("shared/x").unwrap(), b"two");
        assert_eq!(store.list("shared/").unwrap(), ["shared/x"]);
        assert_eq!(
            store.list("").unwrap(),
            ["checkpoints/1/MANIFEST", "shared/x"]
        );
        store.delete("shared/x").unwrap();
        store.delete("shared/x").unwrap();
        assert!(matches!(
            store.get("shared/x"),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(other.get("shared/x").unwrap(), b"another job");
        assert!(store.put("../escape", b"").is_err());
    }

    #[test]
    fn large_objects_go_up_in_parts_and_long_listings_page() {
        let server = server();
        let store = S3Store::new(server.settings("bucket", "")).unwrap();
        let big: Vec<u8> = (0..(2 * MULTIPART_PART_BYTES + 12_345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        store.put("big.sst", &big).unwrap();
        assert!(store.get("big.sst").unwrap() == big, "multipart round trip");
        // More than one page (the server returns at most 1000 keys a page).
        for i in 0..1_005 {
            store.put(&format!("many/{i:05}"), b"x").unwrap();
        }
        let listed = store.list("many/").unwrap();
        assert_eq!(listed.len(), 1_005);
        assert_eq!(listed[1_004], "many/01004");
    }

    #[test]
    fn a_streamed_put_crosses_parts_and_an_aborted_one_leaves_nothing() {
        let server = server();
        let store = S3Store::new(server.settings("bucket", "p")).unwrap();
        let big: Vec<u8> = (0..(MULTIPART_PART_BYTES + MULTIPART_PART_BYTES / 2 + 7))
            .map(|i| (i * 17 % 251) as u8)
            .collect();
        let mut put = store.begin_put("shared/streamed").unwrap();
        // Pieces that end inside a part and across its end.
        for piece in big.chunks(MULTIPART_PART_BYTES / 3 + 1) {
            store.append_put(&mut put, piece).unwrap();
        }
        assert!(
            store.list("shared/").unwrap().is_empty(),
            "not before the end"
        );
        store.finish_put(put).unwrap();
        assert!(
            store.get("shared/streamed").unwrap() == big,
            "streamed round trip"
        );
        let mut small = store.begin_put("shared/small").unwrap();
        store.append_put(&mut small, b"one request").unwrap();
        store.finish_put(small).unwrap();
        assert_eq!(store.get("shared/small").unwrap(), b"one request");
        let mut aborted = store.begin_put("shared/aborted").unwrap();
        store.append_put(&mut aborted, &big).unwrap();
        store.abort_put(aborted);
        assert_eq!(store.list("").unwrap(), ["shared/small", "shared/streamed"]);
    }

    #[test]
    fn a_wrong_secret_is_refused_and_never_printed() {
        let server = server();
        let mut settings = server.settings("bucket", "p");
        settings.secret_access_key = Some("not-the-secret-4242".into());
        let store = S3Store::new(settings.clone()).unwrap();
        let error = store.put("k", b"v").unwrap_err().to_string();
        assert!(error.contains("s3://bucket/p/k"), "{error}");
        for shown in [error, format!("{settings:?}")] {
            assert!(
                !shown.contains("not-the-secret-4242") && !shown.contains(SECRET_KEY),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_stopped_server_fails_calls_in_bounded_time_and_serves_again_once_back() {
        let mut server = server();
        let store = S3Store::new(server.settings("bucket", "")).unwrap();
        store.put("a", b"1").unwrap();
        server.stop();
        let started = Instant::now();
        assert!(store.put("b", b"2").is_err());
        assert!(store.get("a").is_err());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        server.resume().unwrap();
        store.put("b", b"2").unwrap();
        assert_eq!(store.get("a").unwrap(), b"1");
    }

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        let s = S3Settings::from_url("s3://my-bucket/a/b/").unwrap();
        assert_eq!((s.bucket.as_str(), s.prefix.as_str()), ("my-bucket", "a/b"));
        assert_eq!(s.url(), "s3://my-bucket/a/b");
        assert_eq!(S3Settings::from_url("s3://b12").unwrap().prefix, "");
        for bad in [
            "s3://",
            "s3://UPPER/x",
            "s3://ab",
            "s3://b/../x",
            "http://b/x",
        ] {
            assert!(S3Settings::from_url(bad).is_err(), "{bad}");
        }
    }
}
