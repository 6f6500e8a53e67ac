//! Looking into the emulator behind the API: items, objects, counters.

use crate::*;

impl Stack {
    /// Sets a user's quota counter, as if other uploads held `bytes`.
    pub async fn set_quota_used(&self, user_id: &str, bytes: u64) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.dynamodb()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("USER#{user_id}")))
            .item("sk", AttributeValue::S("QUOTA".into()))
            .item("used_bytes", AttributeValue::N(bytes.to_string()))
            .send()
            .await
            .expect("write the quota counter");
    }

    pub fn bucket(&self) -> &str {
        &self.physical_ids["MediaBucket"]
    }

    /// The tests' own S3 client. Response checksum validation is off: moto
    /// reports a multipart object's composite checksum as if it were the
    /// whole object's, which the SDK would reject; the tests compare bytes.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk().await)
            .force_path_style(true)
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Open multipart uploads under a user's prefix, straight from S3.
    pub async fn open_uploads_of(&self, user_id: &str) -> Vec<String> {
        let out = self
            .s3()
            .await
            .list_multipart_uploads()
            .bucket(self.bucket())
            .prefix(format!("uploads/{user_id}/"))
            .send()
            .await
            .expect("list multipart uploads");
        out.uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_owned))
            .collect()
    }

    /// The user's quota counter as stored ("0" before anything was counted).
    pub async fn quota_used(&self, user_id: &str) -> String {
        self.items_of(user_id)
            .await
            .into_iter()
            .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("QUOTA"))
            .and_then(|q| q.get("used_bytes").and_then(|n| n.as_n().ok()).cloned())
            .unwrap_or_else(|| "0".into())
    }

    /// Stores an object straight into the media bucket (as someone with
    /// bucket access would, bypassing the API).
    pub async fn put_object(&self, key: &str, bytes: Vec<u8>) {
        self.s3()
            .await
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put object");
    }

    pub async fn object_exists(&self, key: &str) -> bool {
        self.s3()
            .await
            .head_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// Object keys under a user's prefix.
    pub async fn objects_of(&self, user_id: &str) -> Vec<String> {
        let out = self
            .s3()
            .await
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(format!("uploads/{user_id}/"))
            .send()
            .await
            .expect("list objects");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

impl Stack {
    /// The table through our own store (the cleanup's step records).
    pub async fn store(&self) -> assetbox_shared::db::Table {
        assetbox_shared::db::Table::new(self.dynamodb().await, &self.table)
    }

    /// Starts a cleanup run of `tasks` now, as the scheduler would (without
    /// a scheduled time, the message's id names the run), and waits until
    /// every step it queued is done; its step records.
    pub async fn run_cleanup(&self, tasks: &[&str]) -> Vec<assetbox_shared::cleanup::StepRecord> {
        self.run_cleanup_of(tasks, tasks).await
    }

    /// Starts a cleanup run of `tasks` of which only `runnable` have steps
    /// (the policy turns the others off), and waits for it.
    pub async fn run_cleanup_of(
        &self,
        tasks: &[&str],
        runnable: &[&str],
    ) -> Vec<assetbox_shared::cleanup::StepRecord> {
        let body = serde_json::json!({ "kind": "scheduled-run", "tasks": tasks });
        let sent = self
            .sqs()
            .await
            .send_message()
            .queue_url(&self.cleanup_queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .expect("queue a cleanup run");
        let run = sent.message_id().expect("a message id").to_owned();
        let parsed: Vec<assetbox_shared::cleanup::Task> =
            serde_json::from_value(serde_json::json!(runnable)).expect("task names");
        let first = assetbox_shared::cleanup::first_steps(
            &run,
            "",
            &parsed,
            assetbox_shared::db::keys::DUE_SHARDS,
        )
        .len();
        self.finished_run(&run, first).await
    }

    /// Waits until run `run`, which started with `first` steps, is done:
    /// every step record done and one record per follow-up queued.
    pub async fn finished_run(
        &self,
        run: &str,
        first: usize,
    ) -> Vec<assetbox_shared::cleanup::StepRecord> {
        use assetbox_shared::cleanup::StepState;
        let store = self.store().await;
        let mut steps = Vec::new();
        for _ in 0..1200 {
            steps = store.cleanup_steps(run).await.expect("read the run");
            let follow_ups = steps.iter().filter(|s| s.follow_up).count();
            if steps.len() == first + follow_ups && steps.iter().all(|s| s.state == StepState::Done)
            {
                return steps;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("cleanup run {run} did not finish: {steps:#?}");
    }
}
