//! Reads `template.yaml` so the local stack creates exactly what the template
//! declares: resources, function environments, HTTP routes and schedules.
//! CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`) are rewritten
//! to their long forms, then resolved against what was provisioned.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};

pub struct Template {
    pub resources: Map<String, Value>,
    pub parameters: Map<String, Value>,
    pub globals: Value,
}

impl Template {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).context("template.yaml is not YAML")?;
        let json = to_json(yaml)?;
        let resources = json
            .get("Resources")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| anyhow!("template has no Resources"))?;
        Ok(Self {
            resources,
            parameters: json
                .get("Parameters")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            globals: json.get("Globals").cloned().unwrap_or(Value::Null),
        })
    }

    /// Logical ids of the resources of one type, in template order.
    pub fn of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
    }
}

/// YAML (with CloudFormation tags) to JSON with long-form intrinsics.
fn to_json(yaml: serde_norway::Value) -> anyhow::Result<Value> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)?.trim().to_owned(),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let value = to_json(tagged.value)?;
            match tag {
                "Ref" => serde_json::json!({ "Ref": value }),
                "GetAtt" => {
                    let parts = match value {
                        Value::String(s) => {
                            let (res, attr) = s
                                .split_once('.')
                                .ok_or_else(|| anyhow!("bad !GetAtt {s}"))?;
                            serde_json::json!([res, attr])
                        }
                        other => other,
                    };
                    serde_json::json!({ "Fn::GetAtt": parts })
                }
                other => serde_json::json!({ format!("Fn::{other}"): value }),
            }
        }
    })
}

/// Why a value could not be resolved yet.
#[derive(Debug)]
pub enum Unresolved {
    /// Names a resource that is not provisioned yet: try again later.
    Pending(String),
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Unresolved {
    fn from(e: anyhow::Error) -> Self {
        Unresolved::Error(e)
    }
}

/// What `Ref`, `GetAtt` and dynamic references resolve to locally.
#[derive(Default, Debug, Clone)]
pub struct Resolved {
    pub pseudo: HashMap<String, String>,
    pub refs: HashMap<String, String>,
    pub attrs: HashMap<(String, String), String>,
    /// Secret name → value, for `{{resolve:secretsmanager:NAME:SecretString}}`.
    pub secrets: HashMap<String, String>,
}

impl Resolved {
    fn reference(&self, template: &Template, name: &str) -> Result<String, Unresolved> {
        if let Some(v) = self.pseudo.get(name).or_else(|| self.refs.get(name)) {
            return Ok(v.clone());
        }
        if let Some(param) = template.parameters.get(name) {
            return match param.get("Default") {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
                None => Err(anyhow!("parameter {name} has no default").into()),
            };
        }
        if template.resources.contains_key(name) {
            return Err(Unresolved::Pending(name.to_owned()));
        }
        Err(anyhow!("!Ref to unknown name {name}").into())
    }

    fn attribute(&self, template: &Template, res: &str, attr: &str) -> Result<String, Unresolved> {
        if let Some(v) = self.attrs.get(&(res.to_owned(), attr.to_owned())) {
            return Ok(v.clone());
        }
        if template.resources.contains_key(res) {
            return Err(Unresolved::Pending(res.to_owned()));
        }
        Err(anyhow!("!GetAtt of unknown resource {res}").into())
    }

    fn substitute(
        &self,
        template: &Template,
        text: &str,
        vars: &Map<String, Value>,
    ) -> Result<String, Unresolved> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("unclosed ${{ in !Sub {text}"))?;
            let name = &after[..end];
            let value = if let Some(v) = vars.get(name) {
                self.resolve_string(template, v)?
            } else if let Some((res, attr)) =
                name.split_once('.').filter(|_| !name.starts_with("AWS::"))
            {
                self.attribute(template, res, attr)?
            } else {
                self.reference(template, name)?
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        self.dynamic_references(&out)
    }

    /// `{{resolve:secretsmanager:NAME:SecretString}}`: what CloudFormation
    /// substitutes at deploy time, done here with the locally made secret.
    fn dynamic_references(&self, text: &str) -> Result<String, Unresolved> {
        const OPEN: &str = "{{resolve:secretsmanager:";
        let Some(start) = text.find(OPEN) else {
            return Ok(text.to_owned());
        };
        let inner = &text[start + OPEN.len()..];
        let end = inner
            .find("}}")
            .ok_or_else(|| anyhow!("unclosed dynamic reference"))?;
        let name = inner[..end].split(':').next().unwrap_or_default();
        let secret = self
            .secrets
            .get(name)
            .ok_or_else(|| Unresolved::Error(anyhow!("unknown secret {name}")))?;
        let rest = self.dynamic_references(&inner[end + 2..])?;
        Ok(format!("{}{secret}{rest}", &text[..start]))
    }

    pub fn resolve_string(&self, template: &Template, value: &Value) -> Result<String, Unresolved> {
        match self.resolve(template, value)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(anyhow!("expected a string, got {other}").into()),
        }
    }

    /// Resolves every intrinsic inside `value`.
    pub fn resolve(&self, template: &Template, value: &Value) -> Result<Value, Unresolved> {
        Ok(match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => {
                        let name = arg.as_str().unwrap_or_default();
                        let value = self.reference(template, name)?;
                        let is_list = template
                            .parameters
                            .get(name)
                            .and_then(|p| p.get("Type"))
                            .and_then(Value::as_str)
                            .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
                        if is_list {
                            Value::Array(
                                value
                                    .split(',')
                                    .map(|v| Value::String(v.trim().to_owned()))
                                    .collect(),
                            )
                        } else {
                            Value::String(value)
                        }
                    }
                    "Fn::GetAtt" => {
                        let parts: Vec<&str> = arg
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        let [res, attr] = parts[..] else {
                            return Err(anyhow!("bad Fn::GetAtt {arg}").into());
                        };
                        Value::String(self.attribute(template, res, attr)?)
                    }
                    "Fn::Sub" => match arg {
                        Value::String(s) => {
                            Value::String(self.substitute(template, s, &Map::new())?)
                        }
                        Value::Array(a) if a.len() == 2 => {
                            let text = a[0].as_str().ok_or_else(|| anyhow!("bad Fn::Sub"))?;
                            let vars = a[1].as_object().cloned().unwrap_or_default();
                            Value::String(self.substitute(template, text, &vars)?)
                        }
                        _ => return Err(anyhow!("bad Fn::Sub {arg}").into()),
                    },
                    k if k.starts_with("Fn::") => {
                        return Err(anyhow!("intrinsic {k} is not supported locally").into());
                    }
                    _ => {
                        let mut out = Map::new();
                        out.insert(key.clone(), self.resolve(template, arg)?);
                        Value::Object(out)
                    }
                }
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.resolve(template, v)?);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(template, v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::String(s) => Value::String(self.dynamic_references(s)?),
            other => other.clone(),
        })
    }
}

/// One HTTP route of the template's HttpApi.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    /// `GET`, `POST`, … or `ANY`.
    pub method: String,
    /// As declared, e.g. `/api/projects/{proxy+}`.
    pub path: String,
    /// The authorizer's name, or `None` for a public route.
    pub authorizer: Option<String>,
    /// The logical id of the function behind it.
    pub function: String,
}

/// A function of the template as the local stack runs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The cargo binary (`BuildProperties.Binary`).
    pub binary: String,
    pub environment: HashMap<String, String>,
    pub timeout_secs: u64,
}

/// An S3 event source of a function (`Events: Type: S3`): the bucket's
/// name, the event pattern and the key prefix it filters on.
#[derive(Debug, Clone)]
pub struct S3Source {
    pub function: String,
    pub bucket: String,
    pub events: Vec<String>,
    pub prefix: Option<String>,
}

/// An SQS event source of a function (`Events: Type: SQS`).
#[derive(Debug, Clone)]
pub struct SqsSource {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
}

impl Template {
    /// Every event of `kind` (`S3`, `SQS`) of the functions: the function's
    /// logical id and the event's properties, resolved.
    fn function_events(
        &self,
        resolved: &Resolved,
        kind: &str,
    ) -> anyhow::Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        for (id, function) in self.of_type("AWS::Serverless::Function") {
            let Some(events) = function
                .pointer("/Properties/Events")
                .and_then(Value::as_object)
            else {
                continue;
            };
            for event in events.values() {
                if event.get("Type").and_then(Value::as_str) != Some(kind) {
                    continue;
                }
                let props = resolved
                    .resolve(self, event.get("Properties").unwrap_or(&Value::Null))
                    .map_err(|e| anyhow!("{id}: {e:?}"))?;
                out.push((id.clone(), props));
            }
        }
        Ok(out)
    }

    /// Every `Type: S3` event of the functions, with its bucket resolved.
    pub fn s3_sources(&self, resolved: &Resolved) -> anyhow::Result<Vec<S3Source>> {
        let mut out = Vec::new();
        for (id, props) in self.function_events(resolved, "S3")? {
            let bucket = props
                .get("Bucket")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{id}: S3 event without a bucket"))?
                .to_owned();
            let events = match props.get("Events") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) => many
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => bail!("{id}: S3 event without Events"),
            };
            let prefix = props
                .pointer("/Filter/S3Key/Rules")
                .and_then(Value::as_array)
                .and_then(|rules| {
                    rules.iter().find(|r| {
                        r.get("Name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case("prefix"))
                    })
                })
                .and_then(|r| r.get("Value").and_then(Value::as_str))
                .map(str::to_owned);
            out.push(S3Source {
                function: id.clone(),
                bucket,
                events,
                prefix,
            });
        }
        Ok(out)
    }

    /// Every `Type: SQS` event of the functions, with its queue resolved.
    pub fn sqs_sources(&self, resolved: &Resolved) -> anyhow::Result<Vec<SqsSource>> {
        let mut out = Vec::new();
        for (id, props) in self.function_events(resolved, "SQS")? {
            let arn = props
                .get("Queue")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let queue = resolved
                .attrs
                .iter()
                .find(|((_, attr), value)| attr == "Arn" && value.as_str() == arn)
                .map(|((res, _), _)| res.clone())
                .ok_or_else(|| anyhow!("{id}: {arn} is not a queue of this template"))?;
            out.push(SqsSource {
                function: id.clone(),
                queue_url: resolved.refs[&queue].clone(),
                queue_arn: arn,
                batch_size: props.get("BatchSize").and_then(Value::as_i64).unwrap_or(10) as i32,
            });
        }
        Ok(out)
    }

    pub fn http_routes(&self) -> anyhow::Result<Vec<HttpRoute>> {
        let default_authorizer = self
            .of_type("AWS::Serverless::HttpApi")
            .find_map(|(_, api)| {
                api.pointer("/Properties/Auth/DefaultAuthorizer")
                    .and_then(Value::as_str)
            })
            .map(str::to_owned);
        let mut routes = Vec::new();
        for (id, function) in self.of_type("AWS::Serverless::Function") {
            let Some(events) = function
                .pointer("/Properties/Events")
                .and_then(Value::as_object)
            else {
                continue;
            };
            for event in events
                .values()
                .filter(|e| e.get("Type").and_then(Value::as_str) == Some("HttpApi"))
            {
                let props = event.get("Properties").cloned().unwrap_or_default();
                let path = props
                    .get("Path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("{id}: HttpApi event without Path"))?;
                let method = props
                    .get("Method")
                    .and_then(Value::as_str)
                    .unwrap_or("ANY")
                    .to_uppercase();
                let authorizer = match props.pointer("/Auth/Authorizer").and_then(Value::as_str) {
                    Some("NONE") => None,
                    Some(name) => Some(name.to_owned()),
                    None => default_authorizer.clone(),
                };
                routes.push(HttpRoute {
                    method: if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
                        "ANY".into()
                    } else {
                        method
                    },
                    path: path.to_owned(),
                    authorizer,
                    function: id.clone(),
                });
            }
        }
        Ok(routes)
    }

    /// Every function with its environment resolved (Globals merged in).
    pub fn functions(&self, resolved: &Resolved) -> anyhow::Result<Vec<FunctionSpec>> {
        let global_env = self
            .globals
            .pointer("/Function/Environment/Variables")
            .cloned()
            .unwrap_or_default();
        let global_timeout = self
            .globals
            .pointer("/Function/Timeout")
            .and_then(Value::as_u64)
            .unwrap_or(3);
        let mut out = Vec::new();
        for (id, function) in self.of_type("AWS::Serverless::Function") {
            let binary = function
                .pointer("/Metadata/BuildProperties/Binary")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{id}: no Metadata.BuildProperties.Binary"))?;
            let mut environment = HashMap::new();
            for vars in [
                &global_env,
                function
                    .pointer("/Properties/Environment/Variables")
                    .unwrap_or(&Value::Null),
            ] {
                if let Some(vars) = vars.as_object() {
                    for (k, v) in vars {
                        let value = resolved
                            .resolve_string(self, v)
                            .map_err(|e| anyhow!("{id}.{k}: {e:?}"))?;
                        environment.insert(k.clone(), value);
                    }
                }
            }
            out.push(FunctionSpec {
                logical_id: id.clone(),
                binary: binary.to_owned(),
                environment,
                timeout_secs: function
                    .pointer("/Properties/Timeout")
                    .and_then(Value::as_u64)
                    .unwrap_or(global_timeout),
            });
        }
        Ok(out)
    }

    /// The HTTP API's `CorsConfiguration`, resolved (origins from their
    /// parameter), if it has one.
    pub fn cors_configuration(&self, resolved: &Resolved) -> anyhow::Result<Option<Value>> {
        let Some(config) = self
            .of_type("AWS::Serverless::HttpApi")
            .find_map(|(_, api)| api.pointer("/Properties/CorsConfiguration"))
        else {
            return Ok(None);
        };
        resolved
            .resolve(self, config)
            .map(Some)
            .map_err(|e| anyhow!("CorsConfiguration: {e:?}"))
    }

    /// The JWT authorizer's issuer and audiences, resolved.
    pub fn jwt_authorizer(
        &self,
        resolved: &Resolved,
        name: &str,
    ) -> anyhow::Result<(String, Vec<String>)> {
        let (_, api) = self
            .of_type("AWS::Serverless::HttpApi")
            .next()
            .ok_or_else(|| anyhow!("no AWS::Serverless::HttpApi in the template"))?;
        let config = api
            .pointer(&format!(
                "/Properties/Auth/Authorizers/{name}/JwtConfiguration"
            ))
            .ok_or_else(|| anyhow!("authorizer {name} has no JwtConfiguration"))?;
        let config = resolved
            .resolve(self, config)
            .map_err(|e| anyhow!("authorizer {name}: {e:?}"))?;
        let issuer = config
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("no issuer"))?
            .to_owned();
        let audience: Vec<String> = config
            .get("audience")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if audience.is_empty() {
            bail!("authorizer {name} has no audience");
        }
        Ok((issuer, audience))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Origins: { Type: String, Default: "*" }
  Hosts: { Type: CommaDelimitedList, Default: "a, b" }
Resources:
  Pool: { Type: AWS::Cognito::UserPool }
  Q:
    Type: AWS::SQS::Queue
    Properties:
      Name: !Sub ${AWS::StackName}-q
      Dlq: !GetAtt Pool.Arn
      Both: !Sub "x-${Pool}-${Pool.Arn}-${Origins}"
      Secret: !Sub "{{resolve:secretsmanager:${Pool}:SecretString}}"
      List: !Ref Hosts
"#;

    #[test]
    fn resolves_short_form_intrinsics() {
        let template = Template::parse(TEMPLATE).unwrap();
        let mut resolved = Resolved::default();
        resolved
            .pseudo
            .insert("AWS::StackName".into(), "stack".into());
        let props = template.resources["Q"]["Properties"].clone();
        assert!(
            matches!(resolved.resolve(&template, &props), Err(Unresolved::Pending(p)) if p == "Pool")
        );
        resolved.refs.insert("Pool".into(), "pool-1".into());
        resolved
            .attrs
            .insert(("Pool".into(), "Arn".into()), "arn:pool-1".into());
        resolved.secrets.insert("pool-1".into(), "s3cret".into());
        let out = resolved.resolve(&template, &props).unwrap();
        assert_eq!(out["Name"], "stack-q");
        assert_eq!(out["Dlq"], "arn:pool-1");
        assert_eq!(out["Both"], "x-pool-1-arn:pool-1-*");
        assert_eq!(out["Secret"], "s3cret");
        assert_eq!(out["List"], serde_json::json!(["a", "b"]));
    }
}

#[cfg(test)]
mod key_design {
    use assetbox_shared::db::keys;

    use super::*;

    /// `shared/src/db/keys.rs` and the template's table must name the same
    /// attributes and indexes, or queries fail only once deployed.
    #[test]
    fn template_table_matches_the_key_design() {
        let template = Template::load(&crate::project_root().join("template.yaml")).unwrap();
        let (_, table) = template.of_type("AWS::DynamoDB::Table").next().unwrap();
        let props = &table["Properties"];
        let schema = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(schema(&props["KeySchema"]), [keys::PK, keys::SK]);
        let indexes: HashMap<String, Vec<String>> = props["GlobalSecondaryIndexes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["IndexName"].as_str().unwrap().to_owned(),
                    schema(&g["KeySchema"]),
                )
            })
            .collect();
        let expected = HashMap::from([
            (
                keys::GSI1.to_owned(),
                vec![keys::GSI1_PK.to_owned(), keys::GSI1_SK.to_owned()],
            ),
            (
                keys::GSI2.to_owned(),
                vec![keys::GSI2_PK.to_owned(), keys::GSI2_SK.to_owned()],
            ),
            (
                keys::DUE.to_owned(),
                vec![keys::DUE_PK.to_owned(), keys::DUE_SK.to_owned()],
            ),
        ]);
        assert_eq!(indexes, expected);
        assert_eq!(props["TimeToLiveSpecification"]["AttributeName"], keys::TTL);
        assert_eq!(
            props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
    }
}

/// A DynamoDB stream event source of a function (`Events: Type: DynamoDB`).
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub function: String,
    pub stream_arn: String,
    pub batch_size: usize,
    /// Retries of a failing record before it is skipped.
    pub max_retries: u32,
    /// `FilterCriteria` patterns (a record passes when any matches).
    pub filters: Vec<Value>,
}

/// One route of the WebSocket API.
#[derive(Debug, Clone)]
pub struct LiveRoute {
    /// The logical id of the function behind it.
    pub function: String,
    /// Its answer goes back on the socket (it has a route response).
    pub answers: bool,
    /// A Lambda authorizer runs first (`$connect` only).
    pub authorizer: Option<LiveAuthorizerSpec>,
}

#[derive(Debug, Clone)]
pub struct LiveAuthorizerSpec {
    pub function: String,
    /// The query parameter the identity source names.
    pub token_parameter: String,
}

/// The template's WebSocket API.
#[derive(Debug, Clone)]
pub struct WebSocketApi {
    pub logical_id: String,
    pub stage: String,
    pub routes: HashMap<String, LiveRoute>,
}

/// The names `${…}` of a `Fn::Sub` string (`X.Arn` gives `X`).
fn sub_names(value: &Value) -> Vec<String> {
    let text = match value.get("Fn::Sub") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).unwrap_or_default(),
        _ => value.as_str().unwrap_or_default(),
    };
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .map(|name| name.split('.').next().unwrap_or(name).to_owned())
        .collect()
}

/// The logical id a `Ref` names.
fn ref_of(value: Option<&Value>) -> Option<&str> {
    value?.get("Ref")?.as_str()
}

impl Template {
    /// Every `Type: DynamoDB` event of the functions, its stream resolved.
    pub fn stream_sources(&self, resolved: &Resolved) -> anyhow::Result<Vec<StreamSource>> {
        let mut out = Vec::new();
        for (id, props) in self.function_events(resolved, "DynamoDB")? {
            let filters = props
                .pointer("/FilterCriteria/Filters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("Pattern").and_then(Value::as_str))
                .map(|p| serde_json::from_str(p).with_context(|| format!("{id}: filter {p}")))
                .collect::<anyhow::Result<Vec<Value>>>()?;
            out.push(StreamSource {
                function: id.clone(),
                stream_arn: props
                    .get("Stream")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("{id}: DynamoDB event without a stream"))?
                    .to_owned(),
                batch_size: props
                    .get("BatchSize")
                    .and_then(Value::as_u64)
                    .unwrap_or(100) as usize,
                // Lambda's default is to retry until the record expires.
                max_retries: props
                    .get("MaximumRetryAttempts")
                    .and_then(Value::as_i64)
                    .filter(|n| *n >= 0)
                    .map_or(u32::MAX, |n| n as u32),
                filters,
            });
        }
        Ok(out)
    }

    /// The WebSocket API (`AWS::ApiGatewayV2::Api` with `ProtocolType:
    /// WEBSOCKET`): its stage and routes, each with its function.
    pub fn websocket_api(&self) -> anyhow::Result<Option<WebSocketApi>> {
        let Some((api, _)) = self.of_type("AWS::ApiGatewayV2::Api").find(|(_, r)| {
            r.pointer("/Properties/ProtocolType")
                .and_then(Value::as_str)
                == Some("WEBSOCKET")
        }) else {
            return Ok(None);
        };
        let of_api = |kind: &'static str| {
            self.of_type(kind)
                .filter(move |(_, r)| ref_of(r.pointer("/Properties/ApiId")) == Some(api.as_str()))
        };
        let function_of = |uri: Option<&Value>| {
            uri.map(sub_names).and_then(|names| {
                names.into_iter().find(|n| {
                    self.resources.get(n).is_some_and(|r| {
                        r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function")
                    })
                })
            })
        };
        let stage = of_api("AWS::ApiGatewayV2::Stage")
            .find_map(|(_, r)| r.pointer("/Properties/StageName").and_then(Value::as_str))
            .unwrap_or("$default")
            .to_owned();
        let answering: Vec<&str> = of_api("AWS::ApiGatewayV2::RouteResponse")
            .filter_map(|(_, r)| ref_of(r.pointer("/Properties/RouteId")))
            .collect();
        let mut routes = HashMap::new();
        for (id, route) in of_api("AWS::ApiGatewayV2::Route") {
            let props = &route["Properties"];
            let key = props
                .get("RouteKey")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{id}: no RouteKey"))?;
            let integration = sub_names(props.get("Target").unwrap_or(&Value::Null))
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("{id}: no integrations/${{…}} target"))?;
            let function = function_of(
                self.resources
                    .get(&integration)
                    .and_then(|i| i.pointer("/Properties/IntegrationUri")),
            )
            .ok_or_else(|| anyhow!("{id}: its integration names no function"))?;
            let authorizer = match ref_of(props.get("AuthorizerId")) {
                None => None,
                Some(auth) => {
                    let auth = self
                        .resources
                        .get(auth)
                        .ok_or_else(|| anyhow!("{id}: unknown authorizer {auth}"))?;
                    let function = function_of(auth.pointer("/Properties/AuthorizerUri"))
                        .ok_or_else(|| anyhow!("{id}: its authorizer names no function"))?;
                    let token_parameter = auth
                        .pointer("/Properties/IdentitySource/0")
                        .and_then(Value::as_str)
                        .and_then(|s| s.strip_prefix("route.request.querystring."))
                        .ok_or_else(|| {
                            anyhow!("{id}: the local stack reads tokens from the query string only")
                        })?
                        .to_owned();
                    Some(LiveAuthorizerSpec {
                        function,
                        token_parameter,
                    })
                }
            };
            routes.insert(
                key.to_owned(),
                LiveRoute {
                    function,
                    answers: answering.contains(&id.as_str()),
                    authorizer,
                },
            );
        }
        Ok(Some(WebSocketApi {
            logical_id: api.clone(),
            stage,
            routes,
        }))
    }
}
