//! `ls` (projects, a project's boxes, a box's assets) and `export`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indicatif::BinaryBytes;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::api::{Api, segment};
use crate::error::{CliError, Result, storage_error};

pub enum Listing {
    Projects,
    Boxes(String),
    Assets(String),
}

/// The listing as a table, or with `json` every item as a JSON array.
pub async fn ls(api: &Api, what: Listing, json: bool) -> Result<String> {
    let items = match &what {
        Listing::Projects => api.all_pages("/api/projects/", &[]).await?,
        Listing::Boxes(project) => api
            .all_pages(&format!("/api/projects/{}/boxes/", segment(project)), &[])
            .await
            .map_err(|e| e.about(&format!("project {project}")))?,
        Listing::Assets(box_id) => api
            .all_pages(&format!("/api/boxes/{}/assets/", segment(box_id)), &[])
            .await
            .map_err(|e| e.about(&format!("box {box_id}")))?,
    };
    if json {
        return Ok(serde_json::to_string_pretty(&Value::Array(items)).expect("JSON"));
    }
    let text = |item: &Value, field: &str| match &item[field] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    Ok(match what {
        Listing::Projects if items.is_empty() => "no projects yet".to_owned(),
        Listing::Projects => table(
            &["ID", "NAME", "BOXES", "UPDATED"],
            items
                .iter()
                .map(|p| {
                    ["id", "name", "boxes_count", "updated_at"]
                        .iter()
                        .map(|f| text(p, f))
                        .collect()
                })
                .collect(),
        ),
        Listing::Boxes(_) if items.is_empty() => "no boxes in this project yet".to_owned(),
        Listing::Boxes(_) => table(
            &["#", "ID", "NAME", "ASSETS"],
            items
                .iter()
                .map(|b| {
                    let position = b["order_index"]
                        .as_u64()
                        .map_or("-".into(), |i| (i + 1).to_string());
                    vec![
                        position,
                        text(b, "id"),
                        text(b, "name"),
                        text(b, "assets_count"),
                    ]
                })
                .collect(),
        ),
        Listing::Assets(_) if items.is_empty() => "no assets in this box yet".to_owned(),
        Listing::Assets(box_id) => {
            let names = file_names(api, &box_id).await;
            table(
                &["ID", "TYPE", "STATUS", "SIZE", "NAME"],
                items
                    .iter()
                    .map(|a| {
                        let id = text(a, "id");
                        let name = names.get(&id).cloned().unwrap_or_else(|| "-".into());
                        let size = a["size"]
                            .as_u64()
                            .map_or("-".into(), |s| BinaryBytes(s).to_string());
                        vec![id, text(a, "asset_type"), text(a, "status"), size, name]
                    })
                    .collect(),
            )
        }
    })
}

/// Asset id → the name it was uploaded under. Assets do not carry it; the
/// box's files do (completed ones, and failed ones whose asset failed with
/// them). A listing without names is still a listing, so a failure here
/// only leaves them out.
async fn file_names(api: &Api, box_id: &str) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for status in ["completed", "failed"] {
        let query = [
            ("parent_object_id", box_id.to_owned()),
            ("status", status.to_owned()),
        ];
        for file in api.all_pages("/v1/files", &query).await.unwrap_or_default() {
            if let (Some(asset), Some(name)) =
                (file["asset_id"].as_str(), file["file_name"].as_str())
            {
                names.insert(asset.to_owned(), name.to_owned());
            }
        }
    }
    names
}

/// Columns padded to their widest cell; the last one is not.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| match i == last {
                true => c,
                false => format!("{c:<width$}", width = widths[i]),
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    std::iter::once(line(headers.iter().map(|h| h.to_string()).collect()))
        .chain(rows.into_iter().map(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the project's storyboard (.docx) to `out`, by default
/// `<project name>.docx` in the current folder.
pub async fn export(api: &Api, project: &str, out: Option<PathBuf>) -> Result<String> {
    let about = |e: CliError| e.about(&format!("project {project}"));
    let id = segment(project);
    let found = api
        .get(&format!("/api/projects/{id}/"), &[])
        .await
        .map_err(about)?;
    let ready = api
        .get(
            &format!("/api/projects/{id}/export/"),
            &[("format", "docx".to_owned())],
        )
        .await
        .map_err(about)?;
    let url = ready["url"]
        .as_str()
        .ok_or_else(|| CliError::failure("the export reply has no url"))?;
    let dest = out.unwrap_or_else(|| {
        PathBuf::from(docx_name(
            found["name"].as_str().unwrap_or_default(),
            project,
        ))
    });
    let size = download(api, url, &dest).await?;
    let boxes = ready["boxes"].as_u64().unwrap_or(0);
    Ok(format!(
        "wrote {} ({}, {boxes} box{})",
        dest.display(),
        BinaryBytes(size),
        if boxes == 1 { "" } else { "es" }
    ))
}

/// A file name from a project name: what file systems refuse becomes `_`.
fn docx_name(name: &str, fallback: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c.is_control() || "/\\:*?\"<>|".contains(c) {
            true => '_',
            false => c,
        })
        .collect();
    let cleaned = cleaned.trim().trim_matches('.').trim();
    format!(
        "{}.docx",
        if cleaned.is_empty() {
            fallback
        } else {
            cleaned
        }
    )
}

/// GETs a presigned URL (no Bearer token: the URL is the authorisation)
/// into `dest`, whole or not at all. Errors never show the URL.
async fn download(api: &Api, url: &str, dest: &Path) -> Result<u64> {
    let fail = |e: reqwest::Error| CliError::network("downloading the document", e);
    let mut response = api.http().get(api.url(url)).send().await.map_err(fail)?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(storage_error(status, &body).about("downloading the document"));
    }
    let tmp = dest.with_file_name(format!(
        ".{}.part",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("export")
    ));
    let io = |e: std::io::Error| CliError::failure(format!("{}: {e}", dest.display()));
    let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let mut size = 0u64;
    let written: Result<()> = async {
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }
    .await;
    drop(file);
    match written {
        Ok(()) => tokio::fs::rename(&tmp, dest).await.map_err(io)?,
        Err(e) => {
            tokio::fs::remove_file(&tmp).await.ok();
            return Err(e);
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let out = table(
            &["ID", "NAME"],
            vec![
                vec!["1".into(), "Shot".into()],
                vec!["22222".into(), "Ä".into()],
            ],
        );
        assert_eq!(out, "ID     NAME\n1      Shot\n22222  Ä");
    }

    #[test]
    fn export_names_are_safe_file_names() {
        assert_eq!(docx_name("Teaser", "x"), "Teaser.docx");
        assert_eq!(docx_name("a/b: c?", "x"), "a_b_ c_.docx");
        assert_eq!(docx_name(" .. ", "01J"), "01J.docx");
        assert_eq!(docx_name("Köln", "x"), "Köln.docx");
    }
}
