//! `assetbox`, the command-line client of the public HTTP API (the one
//! browsers use): login, parallel resumable uploads into boxes, listings,
//! the storyboard export. The logic lives here so tests can reach it;
//! `main.rs` only calls [`main`].
//!
//! Modules in dependency order: each names only those above it.

pub mod error;
pub mod config;
pub mod checksum;
pub mod rate;
pub mod progress;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod upload;
pub mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::api::Api;
use crate::catalog::Listing;
use crate::cli::{Cli, Command};
use crate::config::Paths;
use crate::error::{Exit, Result};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(Some(message)) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) if e.exit == Exit::Interrupted => {
            eprintln!("{e}");
            ExitCode::from(e.exit as u8)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit as u8)
        }
    }
}

/// Runs one command; what to print on success.
pub async fn run(cli: Cli) -> Result<Option<String>> {
    let paths = Paths::from_env()?;
    let api_flag = cli.api.as_deref();
    match cli.command {
        Command::Login {
            email,
            password_stdin,
        } => auth::login(
            &paths,
            api_flag,
            auth::Login {
                email,
                password_stdin,
            },
        )
        .await
        .map(Some),
        Command::Logout => auth::logout(&paths).await.map(Some),
        Command::Upload {
            files,
            box_id,
            parallel,
            part_size,
            checksum,
            limit_rate,
            no_resume,
        } => {
            let api = Api::logged_in(&paths, api_flag)?;
            let args = upload::UploadArgs {
                files,
                box_id,
                parallel: usize::from(parallel),
                part_size_mib: part_size,
                checksum,
                limit_rate,
                no_resume,
            };
            let bars = std::io::stdout().is_terminal();
            upload::upload(&api, &paths, args, bars)
                .await
                .map(|()| None)
        }
        Command::Ls {
            project,
            box_id,
            json,
        } => {
            let api = Api::logged_in(&paths, api_flag)?;
            let what = match (project, box_id) {
                (_, Some(b)) => Listing::Assets(b),
                (Some(p), None) => Listing::Boxes(p),
                (None, None) => Listing::Projects,
            };
            catalog::ls(&api, what, json).await.map(Some)
        }
        Command::Export { project, output } => {
            let api = Api::logged_in(&paths, api_flag)?;
            catalog::export(&api, &project, output).await.map(Some)
        }
    }
}
