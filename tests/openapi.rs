//! The OpenAPI document as foreign tools read it: it is valid OpenAPI 3.1
//! (openapi-spec-validator), a TypeScript client generated from it types a
//! front end's calls (openapi-typescript + openapi-fetch, checked by tsc),
//! and the running API answers what it documents (schemathesis, against the
//! local stack, with a registered user's token). The tools install
//! themselves from the pinned manifests in `clients/openapi/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use assetbox_e2e::{Client, User, media, stack, tools};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/openapi")
}

/// The document as the stack serves it, also written to `generated/`.
async fn document() -> (Value, PathBuf) {
    let reply = Client::new().get("/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let dir = clients_dir().join("generated");
    std::fs::create_dir_all(&dir).expect("generated dir");
    // One file per test: tests of this binary run at once.
    let path = dir.join(format!("openapi-{}.json", ulid::Ulid::new()));
    std::fs::write(&path, serde_json::to_vec_pretty(&reply.body).unwrap()).expect("write");
    (reply.body, path)
}

/// Runs a tool; a failure shows all it printed.
fn run(cmd: &mut Command) -> String {
    tools::run(cmd)
}

#[tokio::test]
async fn the_document_is_valid_openapi() {
    let bin = tools::python_venv(&clients_dir().join("requirements.txt"));
    let (doc, path) = document().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let out = run(Command::new(bin.join("openapi-spec-validator")).arg(&path));
    eprintln!(
        "openapi-spec-validator 0.9.0: {}",
        out.lines().nth(1).unwrap_or_default()
    );
    std::fs::remove_file(path).ok();
}

#[tokio::test]
async fn a_generated_typescript_client_type_checks() {
    let bin = tools::npm_ci(&clients_dir());
    let (_, path) = document().await;
    let api = clients_dir().join("generated/api.ts");
    run(Command::new(bin.join("openapi-typescript"))
        .arg(&path)
        .arg("-o")
        .arg(&api));
    // src/client.ts calls list-assets with its filters, initiate-upload and
    // the share view, and expects the type errors a wrong call must make.
    run(Command::new(bin.join("tsc"))
        .args(["--noEmit", "-p"])
        .arg(clients_dir().join("tsconfig.json")));
    std::fs::remove_file(path).ok();
}

#[tokio::test]
async fn every_operation_documents_the_statuses_it_can_answer() {
    let (doc, path) = document().await;
    std::fs::remove_file(path).ok();
    let gaps = api_docs::status_gaps(&doc);
    let total = api_docs::operation_count(&doc);
    eprintln!(
        "{} of {total} operations document every status they can return",
        total - gaps.len()
    );
    for (operation, missing) in &gaps {
        eprintln!("  {operation}: missing {}", missing.join(", "));
    }
    // Public exactly where the template's routes are (`Auth: Authorizer:
    // NONE`): the gateway's 401 is documented on every other operation.
    let template = assetbox_local::template::Template::load(
        &assetbox_local::project_root().join("template.yaml"),
    )
    .expect("template");
    let routes = template.http_routes().expect("routes");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let route = gateway_route(&routes, method, path)
                .unwrap_or_else(|| panic!("{method} {path} is not routed by the template"));
            let protected = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(
                protected,
                route.authorizer.is_some(),
                "{method} {path}: security does not match the template's route {}",
                route.path
            );
            if protected {
                // The shared response, or (where the route also refuses
                // tokens itself) a 401 that names the gateway's body too.
                let unauthorized = op["responses"]["401"].to_string();
                assert!(
                    unauthorized.contains("#/components/responses/Unauthorized")
                        || unauthorized.contains("#/components/schemas/GatewayMessage"),
                    "{method} {path}: {unauthorized}"
                );
            }
        }
    }
    assert!(gaps.is_empty(), "{gaps:#?}");
}

/// The template's route that serves `method path` (HTTP API precedence:
/// the exact route, then the longest greedy `{proxy+}` prefix).
fn gateway_route<'a>(
    routes: &'a [assetbox_local::template::HttpRoute],
    method: &str,
    path: &str,
) -> Option<&'a assetbox_local::template::HttpRoute> {
    let trimmed = path.trim_end_matches('/');
    let method_ok = |r: &&assetbox_local::template::HttpRoute| {
        r.method == "ANY" || r.method.eq_ignore_ascii_case(method)
    };
    let same = |a: &str, b: &str| {
        let (a, b) = (a.split('/'), b.split('/'));
        a.clone().count() == b.clone().count()
            && a.zip(b)
                .all(|(x, y)| x == y || (x.starts_with('{') && y.starts_with('{')))
    };
    routes
        .iter()
        .filter(method_ok)
        .find(|r| same(&r.path, trimmed))
        .or_else(|| {
            routes
                .iter()
                .filter(method_ok)
                .filter_map(|r| r.path.strip_suffix("/{proxy+}").map(|prefix| (r, prefix)))
                .filter(|(_, prefix)| {
                    trimmed.len() > prefix.len()
                        && trimmed.starts_with(prefix)
                        && trimmed.as_bytes()[prefix.len()] == b'/'
                })
                .max_by_key(|(_, prefix)| prefix.len())
                .map(|(r, _)| r)
        })
}

/// Resources of `user` for schemathesis to find: without them every id it
/// makes up is a 404 and the routes' other answers go untested.
async fn seed(api: &Client, user: &User) -> Value {
    let token = Some(user.access_token.as_str());
    let project = api
        .post("/api/projects/", token, &json!({ "name": "Schemathesis" }))
        .await;
    let project = project.body["id"].as_str().expect("project").to_owned();
    let the_box = api
        .post(
            "/api/boxes/",
            token,
            &json!({ "project": project, "name": "Shot 1" }),
        )
        .await;
    let box_id = the_box.body["id"].as_str().expect("box").to_owned();
    let file = api
        .upload_into_box(user, &box_id, "image/png", media::png(64, 48, 7))
        .await;
    let asset = api
        .get(&format!("/api/boxes/{box_id}/assets/"), token)
        .await
        .body["results"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let open = api
        .post(
            "/v1/files/uploads",
            token,
            &json!({ "file_name": "open.mp4", "file_size": 12582912,
                "file_content_type": "video/mp4", "num_parts": 3, "part_size": 5242880 }),
        )
        .await;
    let open = open.body["id"].as_str().expect("open upload").to_owned();
    let companion = api
        .post(
            "/s3/multipart",
            token,
            &json!({ "filename": "clip.mp4", "type": "video/mp4", "metadata": {} }),
        )
        .await;
    let link = api
        .post(
            &format!("/api/projects/{project}/share-links/"),
            token,
            &json!({}),
        )
        .await;
    let share_token = link.body["token"].as_str().expect("share token").to_owned();
    let comment = api
        .post(
            &format!("/api/shared/{share_token}/boxes/{box_id}/comments/"),
            None,
            &json!({ "author_name": "Reviewer", "text": "Nice light." }),
        )
        .await;
    json!({
        "id": [project, box_id, asset, file, open, comment.body["id"]],
        "box_id": [box_id],
        "link_id": [link.body["id"]],
        "token": [share_token],
        "upload_id": [companion.body["uploadId"]],
        "key": [companion.body["key"]],
        "project": [project],
        "box": [box_id],
        "body.project": [project],
        "body.parent_object_id": [box_id],
    })
}

/// A schemathesis configuration that draws half of each named parameter
/// from the seeded values.
fn schemathesis_config(seeded: &Value) -> String {
    let mut toml = String::new();
    let dictionary = |name: &str| name.replace('.', "_");
    for (name, values) in seeded.as_object().unwrap() {
        let name = dictionary(name);
        let values: Vec<String> = values
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("{v:?}"))
            .collect();
        toml += &format!(
            "[dictionaries.{name}]\nvalues = [{}]\n\n",
            values.join(", ")
        );
    }
    toml += "[parameters]\n";
    for name in seeded.as_object().unwrap().keys() {
        let key = match name.as_str() {
            body if body.starts_with("body.") => body.to_owned(),
            "key" | "project" | "box" => format!("query.{name}"),
            _ => format!("path.{name}"),
        };
        toml += &format!(
            "\"{key}\" = {{ dictionary = \"{}\", probability = 0.5 }}\n",
            dictionary(name)
        );
    }
    toml
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let bin = tools::python_venv(&clients_dir().join("requirements.txt"));
    let api = Client::new();
    let user = api.new_user().await;
    let seeded = seed(&api, &user).await;
    let (_, path) = document().await;
    let config = path.with_extension("toml");
    std::fs::write(&config, schemathesis_config(&seeded)).expect("config");
    let started = Instant::now();
    let out = Command::new(bin.join("schemathesis"))
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&path)
        .args(["--url", &stack().api])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", user.access_token),
        ])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        // Imports make the stack fetch the URL it is given: no test may
        // send traffic beyond this machine.
        .args(["--exclude-path-regex", "/import/"])
        // Bounded: a few cases per operation and phase. One worker: with two,
        // hypothesis parses its lambdas' sources in both threads at once and
        // CPython 3.11's `ast.parse` is not safe for that ("AST constructor
        // recursion depth mismatch", reported as a flaky runtime error).
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "10", "--workers", "1", "--seed", "7"])
        .args(["--request-timeout", "30", "--no-color"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        // Its cache goes beside the document (ignored by git).
        .current_dir(path.parent().expect("generated dir"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("start schemathesis");
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&path).ok();
    std::fs::remove_file(&config).ok();
    // The summary's "Test cases:" line and the one after it
    // ("1950 generated, 1950 passed").
    let lines: Vec<&str> = printed.lines().map(str::trim).collect();
    let cases = lines
        .iter()
        .position(|l| *l == "Test cases:")
        .and_then(|i| lines.get(i + 1))
        .copied()
        .unwrap_or("(no summary)");
    let verdict = lines
        .iter()
        .rev()
        .find(|l| l.starts_with('='))
        .copied()
        .unwrap_or_default();
    eprintln!(
        "schemathesis 4.32.5 in {:.0?}: test cases: {cases}; {}",
        started.elapsed(),
        verdict.trim_matches(|c| c == '=' || c == ' ')
    );
    assert!(out.status.success(), "schemathesis failed:\n{printed}");
}
