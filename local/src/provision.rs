//! Creates in the emulator every table, bucket, queue and user pool that
//! `template.yaml` declares, with the template's own attributes, in
//! dependency order. Types with no local counterpart (IAM, bucket policies,
//! the HTTP API, functions, schedules) are handled by the rest of the local
//! stack or noted as not emulated; an unknown type is an error so the template
//! cannot grow a resource the local stack silently ignores.

use std::collections::HashMap;

use anyhow::{Context, anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types as cognito;
use aws_sdk_dynamodb::types as ddb;
use aws_sdk_s3::types as s3;
use aws_sdk_sqs::types::QueueAttributeName;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::Value;

use crate::template::{Resolved, Template, Unresolved};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// Resource types that need nothing in the emulator.
const NOT_PROVISIONED: &[&str] = &[
    // Served in-process by the gateway and the function registry.
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::Function",
    // The live WebSocket API, served by live.rs.
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::RouteResponse",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGatewayV2::Stage",
    "AWS::Lambda::Permission",
    // Fired by the local scheduler.
    "AWS::Scheduler::Schedule",
    // Not enforced locally: least privilege is AWS's to check.
    "AWS::IAM::Role",
    "AWS::S3::BucketPolicy",
];

/// Creates what the template declares, or adopts what an earlier start left
/// in a restored emulator (same names): so a data directory survives
/// restarts, and a template that grew a resource gets it. `known_secrets`
/// are the values generated secrets had before (else fresh ones).
pub async fn provision(
    sdk: &SdkConfig,
    template: &Template,
    stack_name: &str,
    known_secrets: &HashMap<String, String>,
) -> anyhow::Result<Resolved> {
    let mut resolved = Resolved::default();
    resolved.secrets.extend(known_secrets.clone());
    resolved.pseudo.extend([
        ("AWS::StackName".to_owned(), stack_name.to_owned()),
        ("AWS::Region".to_owned(), REGION.to_owned()),
        ("AWS::AccountId".to_owned(), ACCOUNT_ID.to_owned()),
        ("AWS::Partition".to_owned(), "aws".to_owned()),
        ("AWS::URLSuffix".to_owned(), "amazonaws.com".to_owned()),
    ]);
    // Resources with no emulator counterpart still answer !Ref and !GetAtt Arn,
    // so whatever refers to them (a schedule's role, say) resolves.
    for (id, resource) in &template.resources {
        let kind = kind(resource);
        if NOT_PROVISIONED.contains(&kind) {
            let name = format!("{stack_name}-{id}");
            let service = match kind {
                "AWS::IAM::Role" => format!("iam::{ACCOUNT_ID}:role/{name}"),
                "AWS::Serverless::Function" => {
                    format!("lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
                }
                "AWS::Scheduler::Schedule" => {
                    format!("scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{name}")
                }
                _ => format!("local:{REGION}:{ACCOUNT_ID}:{name}"),
            };
            resolved.refs.insert(id.clone(), name);
            resolved
                .attrs
                .insert((id.clone(), "Arn".into()), format!("arn:aws:{service}"));
        }
    }
    let clients = Clients::new(sdk);
    let mut pending: Vec<(String, Value)> = template
        .resources
        .iter()
        .filter(|(_, r)| !NOT_PROVISIONED.contains(&kind(r)))
        .map(|(id, r)| (id.clone(), r.clone()))
        .collect();
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let before = pending.len();
        for (id, resource) in pending {
            let props = resource
                .get("Properties")
                .cloned()
                .unwrap_or(Value::Object(Default::default()));
            match resolved.resolve(template, &props) {
                Ok(props) => create(&clients, &mut resolved, &id, kind(&resource), &props)
                    .await
                    .with_context(|| format!("creating {id}"))?,
                Err(Unresolved::Pending(_)) => waiting.push((id, resource)),
                Err(Unresolved::Error(e)) => return Err(e.context(format!("resolving {id}"))),
            }
        }
        if waiting.len() == before {
            let ids: Vec<_> = waiting.iter().map(|(id, _)| id.as_str()).collect();
            bail!("circular or unsatisfiable references between {ids:?}");
        }
        pending = waiting;
    }
    Ok(resolved)
}

fn kind(resource: &Value) -> &str {
    resource
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    cognito: aws_sdk_cognitoidentityprovider::Client,
}

impl Clients {
    fn new(sdk: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            s3: crate::s3_client(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(sdk),
        }
    }
}

fn text<'a>(props: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    props
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("missing {key}"))
}

fn strings(props: &Value, pointer: &str) -> Vec<String> {
    props
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn as_i32(v: Option<&Value>) -> Option<i32> {
    v.and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
    .map(|n| n as i32)
}

async fn create(
    c: &Clients,
    resolved: &mut Resolved,
    id: &str,
    kind: &str,
    props: &Value,
) -> anyhow::Result<()> {
    let stack = resolved.pseudo["AWS::StackName"].clone();
    let default_name = format!("{stack}-{id}").to_lowercase();
    match kind {
        "AWS::DynamoDB::Table" => {
            let name = props
                .get("TableName")
                .and_then(Value::as_str)
                .unwrap_or(&default_name)
                .to_owned();
            let stream = create_table(&c.dynamodb, &name, props).await?;
            if let Some(arn) = stream {
                resolved.attrs.insert((id.into(), "StreamArn".into()), arn);
            }
            resolved.refs.insert(id.into(), name.clone());
            resolved.attrs.insert(
                (id.into(), "Arn".into()),
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"),
            );
        }
        "AWS::SQS::Queue" => {
            let name = props
                .get("QueueName")
                .and_then(Value::as_str)
                .unwrap_or(&default_name)
                .to_owned();
            let mut request = c.sqs.create_queue().queue_name(&name);
            for (key, attr) in [
                ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
                (
                    "MessageRetentionPeriod",
                    QueueAttributeName::MessageRetentionPeriod,
                ),
                ("DelaySeconds", QueueAttributeName::DelaySeconds),
                (
                    "ReceiveMessageWaitTimeSeconds",
                    QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                ),
                (
                    "SqsManagedSseEnabled",
                    QueueAttributeName::SqsManagedSseEnabled,
                ),
            ] {
                if let Some(v) = props.get(key) {
                    request = request.attributes(
                        attr,
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    );
                }
            }
            if let Some(policy) = props.get("RedrivePolicy") {
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let url = request
                .send()
                .await?
                .queue_url
                .ok_or_else(|| anyhow!("no queue url"))?;
            resolved.refs.insert(id.into(), url);
            resolved.attrs.insert(
                (id.into(), "Arn".into()),
                format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"),
            );
            resolved.attrs.insert((id.into(), "QueueName".into()), name);
        }
        "AWS::S3::Bucket" => {
            let name = props
                .get("BucketName")
                .and_then(Value::as_str)
                .unwrap_or(&default_name)
                .to_owned();
            create_bucket(&c.s3, &name, props).await?;
            resolved.refs.insert(id.into(), name.clone());
            resolved
                .attrs
                .insert((id.into(), "Arn".into()), format!("arn:aws:s3:::{name}"));
        }
        "AWS::Cognito::UserPool" => {
            let name = props
                .get("UserPoolName")
                .and_then(Value::as_str)
                .unwrap_or(&default_name);
            if let Some(pool) = existing_user_pool(&c.cognito, name).await? {
                let pool_id = pool.id.ok_or_else(|| anyhow!("no pool id"))?;
                record_user_pool(resolved, id, pool_id, None);
                return Ok(());
            }
            let mut request = c.cognito.create_user_pool().pool_name(name);
            for attr in strings(props, "/UsernameAttributes") {
                request = request.username_attributes(attr.as_str().into());
            }
            for attr in strings(props, "/AutoVerifiedAttributes") {
                request = request.auto_verified_attributes(attr.as_str().into());
            }
            if let Some(p) = props.pointer("/Policies/PasswordPolicy") {
                let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
                request = request.policies(
                    cognito::UserPoolPolicyType::builder()
                        .password_policy(
                            cognito::PasswordPolicyType::builder()
                                .set_minimum_length(as_i32(p.get("MinimumLength")))
                                .require_lowercase(flag("RequireLowercase"))
                                .require_uppercase(flag("RequireUppercase"))
                                .require_numbers(flag("RequireNumbers"))
                                .require_symbols(flag("RequireSymbols"))
                                .build(),
                        )
                        .build(),
                );
            }
            let pool = request
                .send()
                .await?
                .user_pool
                .ok_or_else(|| anyhow!("no user pool"))?;
            let pool_id = pool.id.ok_or_else(|| anyhow!("no pool id"))?;
            record_user_pool(resolved, id, pool_id, pool.arn);
        }
        "AWS::Cognito::UserPoolClient" => {
            let name = props
                .get("ClientName")
                .and_then(Value::as_str)
                .unwrap_or(&default_name);
            let pool_id = text(props, "UserPoolId")?;
            if let Some(client_id) = existing_client(&c.cognito, pool_id, name).await? {
                resolved.refs.insert(id.into(), client_id);
                return Ok(());
            }
            let mut request = c
                .cognito
                .create_user_pool_client()
                .user_pool_id(text(props, "UserPoolId")?)
                .client_name(name)
                .generate_secret(
                    props
                        .get("GenerateSecret")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
                .set_access_token_validity(as_i32(props.get("AccessTokenValidity")))
                .set_id_token_validity(as_i32(props.get("IdTokenValidity")))
                .set_refresh_token_validity(as_i32(props.get("RefreshTokenValidity")));
            for flow in strings(props, "/ExplicitAuthFlows") {
                request = request.explicit_auth_flows(flow.as_str().into());
            }
            if let Some(units) = props.get("TokenValidityUnits") {
                let unit = |k: &str| {
                    units
                        .get(k)
                        .and_then(Value::as_str)
                        .map(cognito::TimeUnitsType::from)
                };
                request = request.token_validity_units(
                    cognito::TokenValidityUnitsType::builder()
                        .set_access_token(unit("AccessToken"))
                        .set_id_token(unit("IdToken"))
                        .set_refresh_token(unit("RefreshToken"))
                        .build(),
                );
            }
            let client = request
                .send()
                .await?
                .user_pool_client
                .ok_or_else(|| anyhow!("no client"))?;
            resolved.refs.insert(
                id.into(),
                client.client_id.ok_or_else(|| anyhow!("no client id"))?,
            );
        }
        "AWS::Cognito::UserPoolGroup" => {
            let name = text(props, "GroupName")?;
            let created = c
                .cognito
                .create_group()
                .user_pool_id(text(props, "UserPoolId")?)
                .group_name(name)
                .set_description(
                    props
                        .get("Description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                )
                .send()
                .await;
            match created {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_group_exists_exception()) => {}
                Err(e) => return Err(e.into()),
            }
            resolved.refs.insert(id.into(), name.to_owned());
        }
        "AWS::SecretsManager::Secret" => {
            // Deployed functions get the value through a CloudFormation dynamic
            // reference; locally a fresh random value per start does the same job.
            let length = props
                .pointer("/GenerateSecretString/PasswordLength")
                .and_then(Value::as_u64)
                .unwrap_or(32) as usize;
            let name = props
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or(&default_name)
                .to_owned();
            resolved.secrets.entry(name.clone()).or_insert_with(|| {
                rand::rng()
                    .sample_iter(Alphanumeric)
                    .take(length)
                    .map(char::from)
                    .collect()
            });
            resolved.attrs.insert(
                (id.into(), "Id".into()),
                format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}"),
            );
            resolved.refs.insert(id.into(), name);
        }
        other => bail!("resource type {other} is not known to the local stack"),
    }
    Ok(())
}

fn record_user_pool(resolved: &mut Resolved, id: &str, pool_id: String, arn: Option<String>) {
    resolved.attrs.insert(
        (id.into(), "Arn".into()),
        arn.unwrap_or_else(|| {
            format!("arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{pool_id}")
        }),
    );
    resolved.attrs.insert(
        (id.into(), "ProviderName".into()),
        format!("cognito-idp.{REGION}.amazonaws.com/{pool_id}"),
    );
    resolved.refs.insert(id.into(), pool_id);
}

/// The pool an earlier start created under this name (a restored emulator).
async fn existing_user_pool(
    client: &aws_sdk_cognitoidentityprovider::Client,
    name: &str,
) -> anyhow::Result<Option<cognito::UserPoolDescriptionType>> {
    let pools = client.list_user_pools().max_results(60).send().await?;
    Ok(pools
        .user_pools
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name() == Some(name)))
}

async fn existing_client(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let clients = client
        .list_user_pool_clients()
        .user_pool_id(pool_id)
        .max_results(60)
        .send()
        .await?;
    Ok(clients
        .user_pool_clients
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.client_name() == Some(name))
        .and_then(|c| c.client_id))
}

/// Creates the table; its stream's ARN when it has one.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> anyhow::Result<Option<String>> {
    let key_schema = |v: &Value| -> anyhow::Result<Vec<ddb::KeySchemaElement>> {
        v.as_array()
            .ok_or_else(|| anyhow!("KeySchema is not a list"))?
            .iter()
            .map(|k| {
                Ok(ddb::KeySchemaElement::builder()
                    .attribute_name(text(k, "AttributeName")?)
                    .key_type(text(k, "KeyType")?.into())
                    .build()?)
            })
            .collect()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(
            props
                .get("BillingMode")
                .and_then(Value::as_str)
                .unwrap_or("PAY_PER_REQUEST")
                .into(),
        )
        .set_key_schema(Some(key_schema(
            props.get("KeySchema").unwrap_or(&Value::Null),
        )?));
    for def in props
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        request = request.attribute_definitions(
            ddb::AttributeDefinition::builder()
                .attribute_name(text(def, "AttributeName")?)
                .attribute_type(text(def, "AttributeType")?.into())
                .build()?,
        );
    }
    for gsi in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let projection = gsi.get("Projection").cloned().unwrap_or_default();
        request = request.global_secondary_indexes(
            ddb::GlobalSecondaryIndex::builder()
                .index_name(text(gsi, "IndexName")?)
                .set_key_schema(Some(key_schema(
                    gsi.get("KeySchema").unwrap_or(&Value::Null),
                )?))
                .projection(
                    ddb::Projection::builder()
                        .projection_type(
                            projection
                                .get("ProjectionType")
                                .and_then(Value::as_str)
                                .unwrap_or("ALL")
                                .into(),
                        )
                        .set_non_key_attributes(
                            Some(strings(&projection, "/NonKeyAttributes"))
                                .filter(|v| !v.is_empty()),
                        )
                        .build(),
                )
                .build()?,
        );
    }
    if let Some(view) = props
        .pointer("/StreamSpecification/StreamViewType")
        .and_then(Value::as_str)
    {
        request = request.stream_specification(
            ddb::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view.into())
                .build()?,
        );
    }
    let created = match request.send().await {
        Ok(created) => created.table_description,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            // Restored from a data directory: keep it as it is (its TTL and
            // backups were set when it was created).
            let table = client.describe_table().table_name(name).send().await?.table;
            return Ok(table
                .and_then(|t| t.latest_stream_arn)
                .map(|arn| arn.to_owned()));
        }
        Err(e) => return Err(e.into()),
    };
    let stream = created
        .as_ref()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned);
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                ddb::TimeToLiveSpecification::builder()
                    .attribute_name(text(ttl, "AttributeName")?)
                    .enabled(ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
                    .build()?,
            )
            .send()
            .await?;
    }
    if props.pointer("/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled")
        == Some(&Value::Bool(true))
    {
        client
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(
                ddb::PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(stream)
}

async fn create_bucket(
    client: &aws_sdk_s3::Client,
    name: &str,
    props: &Value,
) -> anyhow::Result<()> {
    match client.create_bucket().bucket(name).send().await {
        Ok(_) => {}
        // Restored from a data directory: its settings are put again below.
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(block) = props.get("PublicAccessBlockConfiguration") {
        let flag = |k: &str| block.get(k).and_then(Value::as_bool);
        client
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                s3::PublicAccessBlockConfiguration::builder()
                    .set_block_public_acls(flag("BlockPublicAcls"))
                    .set_block_public_policy(flag("BlockPublicPolicy"))
                    .set_ignore_public_acls(flag("IgnorePublicAcls"))
                    .set_restrict_public_buckets(flag("RestrictPublicBuckets"))
                    .build(),
            )
            .send()
            .await?;
    }
    let rules = props
        .pointer("/CorsConfiguration/CorsRules")
        .and_then(Value::as_array);
    if let Some(rules) = rules {
        let mut cors = s3::CorsConfiguration::builder();
        for rule in rules {
            cors = cors.cors_rules(
                s3::CorsRule::builder()
                    .set_allowed_origins(Some(strings(rule, "/AllowedOrigins")))
                    .set_allowed_methods(Some(strings(rule, "/AllowedMethods")))
                    .set_allowed_headers(Some(strings(rule, "/AllowedHeaders")))
                    .set_expose_headers(Some(strings(rule, "/ExposedHeaders")))
                    .set_max_age_seconds(as_i32(rule.get("MaxAge")))
                    .build()?,
            );
        }
        client
            .put_bucket_cors()
            .bucket(name)
            .cors_configuration(cors.build()?)
            .send()
            .await?;
    }
    let rules = props
        .pointer("/LifecycleConfiguration/Rules")
        .and_then(Value::as_array);
    if let Some(rules) = rules {
        let mut lifecycle = s3::BucketLifecycleConfiguration::builder();
        for rule in rules {
            let mut r = s3::LifecycleRule::builder()
                .set_id(rule.get("Id").and_then(Value::as_str).map(str::to_owned))
                .status(text(rule, "Status")?.into())
                .filter(s3::LifecycleRuleFilter::builder().prefix("").build());
            if let Some(days) =
                as_i32(rule.pointer("/AbortIncompleteMultipartUpload/DaysAfterInitiation"))
            {
                r = r.abort_incomplete_multipart_upload(
                    s3::AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(days)
                        .build(),
                );
            }
            if let Some(days) = as_i32(rule.get("ExpirationInDays")) {
                r = r.expiration(s3::LifecycleExpiration::builder().days(days).build());
            }
            lifecycle = lifecycle.rules(r.build()?);
        }
        client
            .put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(lifecycle.build()?)
            .send()
            .await?;
    }
    Ok(())
}

/// Environment of every function, keyed by logical id.
pub type Environments = HashMap<String, HashMap<String, String>>;
