//! `login` and `logout`.

use std::io::{BufRead, IsTerminal, Read, Write};

use reqwest::Method;
use serde_json::json;

use crate::api::{Api, Retry, resolve_api};
use crate::config::{Credentials, Paths, now_secs, remove_if_present};
use crate::error::{CliError, Exit, Result};

pub struct Login {
    pub email: Option<String>,
    pub password_stdin: bool,
}

pub async fn login(paths: &Paths, api_flag: Option<&str>, args: Login) -> Result<String> {
    let saved = Credentials::load(paths).ok().flatten();
    let base = resolve_api(api_flag, saved.as_ref().map(|c| c.api.as_str()))?;
    let email = match args.email {
        Some(email) => email,
        None => prompt_email()?,
    };
    let password = read_password(args.password_stdin)?;
    let api = Api::public(base.clone());
    let tokens = api
        .post(
            "/api/auth/login",
            &json!({ "email": email, "password": password }),
            Retry::Safe,
        )
        .await
        .map_err(|e| match e.exit {
            Exit::Auth => CliError::new(Exit::Auth, format!("login refused: {}", e.message)),
            _ => e,
        })?;
    let field = |name: &str| {
        tokens[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CliError::failure(format!("the login reply has no {name}")))
    };
    let credentials = Credentials {
        api: base.clone(),
        email: Some(email.trim().to_lowercase()),
        access_token: field("access_token")?,
        refresh_token: field("refresh_token")?,
        expires_at: now_secs() + tokens["expires_in"].as_u64().unwrap_or(300),
    };
    credentials.save(paths)?;
    Ok(format!(
        "logged in as {} at {base} (saved in {})",
        credentials.email.as_deref().unwrap_or_default(),
        paths.credentials().display()
    ))
}

fn prompt_email() -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage("pass --email (no terminal to ask on)"));
    }
    eprint!("Email: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("reading the e-mail: {e}")))?;
    let email = line.trim().to_owned();
    if email.is_empty() {
        return Err(CliError::usage("no e-mail given"));
    }
    Ok(email)
}

/// `--password-stdin` reads it (a trailing newline is not part of it);
/// otherwise a terminal is asked without echo.
fn read_password(from_stdin: bool) -> Result<String> {
    let password = if from_stdin {
        let mut raw = String::new();
        std::io::stdin()
            .read_to_string(&mut raw)
            .map_err(|e| CliError::usage(format!("reading the password from stdin: {e}")))?;
        raw.strip_suffix('\n')
            .map(|p| p.strip_suffix('\r').unwrap_or(p))
            .unwrap_or(&raw)
            .to_owned()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")
            .map_err(|e| CliError::usage(format!("reading the password: {e}")))?
    } else {
        return Err(CliError::usage(
            "no terminal to ask for the password: pipe it in with --password-stdin",
        ));
    };
    if password.is_empty() {
        return Err(CliError::usage("empty password"));
    }
    Ok(password)
}

/// Revokes the tokens (every device: the API signs the user out globally)
/// and deletes the saved login, which goes even when the API cannot be
/// reached, since that is what the user asked for locally.
pub async fn logout(paths: &Paths) -> Result<String> {
    let Some(saved) = Credentials::load(paths)? else {
        return Ok("not logged in".to_owned());
    };
    // The tokens are revoked where they were issued, whatever --api says.
    let revoked = match Api::logged_in(paths, Some(&saved.api)) {
        Ok(api) => api
            .send(Method::POST, "/api/auth/logout", &[], None, Retry::Safe)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    remove_if_present(&paths.credentials())?;
    match revoked {
        Ok(()) => Ok("logged out".to_owned()),
        // Already revoked or expired: nothing left to revoke.
        Err(e) if e.exit == Exit::Auth => {
            Ok("logged out (the session had already ended)".to_owned())
        }
        Err(e) => Err(CliError::new(
            e.exit,
            format!(
                "removed the saved login, but could not revoke it at the API: {}",
                e.message
            ),
        )),
    }
}
