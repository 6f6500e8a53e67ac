//! The command line: commands, flags, and the help that documents them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::checksum::Checksum;

const AFTER_HELP: &str = "\
Examples:
  assetbox login --email dana@example.com                  # asks for the password
  printf '%s\\n' \"$PASSWORD\" | assetbox login --email dana@example.com --password-stdin
  assetbox --api https://api.example.com login --email dana@example.com
  assetbox ls                                              # your projects
  assetbox ls 01JPROJECT…                                  # its boxes, in order
  assetbox ls --box 01JBOX… --json                         # a box's assets, as JSON
  assetbox upload clip.mp4 stills/*.png --box 01JBOX…      # parallel, resumable
  assetbox upload big.mov --box 01JBOX… --parallel 8 --checksum crc64nvme --limit-rate 20M
  assetbox upload big.mov --box 01JBOX…                    # again after Ctrl-C: resumes
  assetbox export 01JPROJECT… -o storyboard.docx
  assetbox logout

The API: --api URL, else $ASSETBOX_API, else the one `login` used, else
http://127.0.0.1:3000 (the local stack).
State: $ASSETBOX_CONFIG_DIR/assetbox/ (else your config folder, e.g.
~/.config/assetbox/): credentials.json (mode 0600) and uploads/ (resume state).

Exit codes:
  0    done
  1    unexpected: network, server (5xx), storage
  2    usage: bad arguments, or a file that cannot be read
  3    not logged in, or the login or session was refused (run `assetbox login`)
  4    not found: no project, box or upload of yours has that id
  5    refused by the API: validation, file type, size, quota, state
  6    partial: some of several files failed (each is named on stderr)
  130  interrupted (Ctrl-C): run the same upload again to resume";

const UPLOAD_HELP: &str = "\
Each FILE goes straight to storage in parts (8 MiB unless --part-size, more
for files beyond 80 GiB), up to --parallel parts at once, and becomes an asset
of the box. Its type comes from the extension; the API decides whether it is
allowed.

Resume: after each finished part the upload's state is saved in
<config>/assetbox/uploads/. Run the same command again (after Ctrl-C, a kill,
a lost connection) and only the parts storage does not hold yet are sent; the
part size and checksum stay those the upload started with. An upload that
expired (after 24 h) or was aborted starts again. --no-resume aborts the
earlier upload and starts again. A file changed since is a new upload; one
written to while it uploads is stopped and its upload aborted.

Examples:
  assetbox upload clip.mp4 --box 01JBOX…
  assetbox upload shots/*.mp4 --box 01JBOX… --parallel 8 --part-size 16
  assetbox upload clip.mp4 --box 01JBOX… --checksum sha256 --limit-rate 5M

Exit codes: 0 done, 1 network or server, 2 usage or unreadable file, 3 not
logged in, 4 no such box, 5 refused by the API (type, size, quota),
6 some of several files failed, 130 interrupted (resume by running again).";

#[derive(Debug, Parser)]
#[command(
    name = "assetbox",
    version,
    about = "The assetbox command-line client: log in, upload media into boxes (parallel, resumable), list, export.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// The API's base URL [default: $ASSETBOX_API, else the one `login` used, else http://127.0.0.1:3000]
    #[arg(long, global = true, value_name = "URL")]
    pub api: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in; the tokens are saved for the other commands (and refreshed by them)
    #[command(
        after_help = "Examples:\n  assetbox login --email dana@example.com\n  printf '%s\\n' \"$PASSWORD\" | assetbox login --email dana@example.com --password-stdin\n\nExit codes: 0 done, 1 network, 2 usage, 3 refused, 5 invalid e-mail or password format."
    )]
    Login {
        /// The account's e-mail (asked for when not given and stdin is a terminal)
        #[arg(long)]
        email: Option<String>,
        /// Read the password from stdin (a trailing newline dropped) instead of asking
        #[arg(long)]
        password_stdin: bool,
    },

    /// Revoke the tokens (on every device) and delete the saved login
    Logout,

    /// Upload files into a box, in parallel parts, resumable
    #[command(after_help = UPLOAD_HELP)]
    Upload {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The box the files become assets of
        #[arg(long = "box", value_name = "ID")]
        box_id: String,
        /// Parts (and files) in flight at once
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallel: u16,
        /// Part size in MiB (5–5120; at most 10,000 parts per file)
        #[arg(long, value_name = "MiB")]
        part_size: Option<u64>,
        /// Have storage verify each part (and, for CRCs, the whole file)
        #[arg(long, value_enum)]
        checksum: Option<Checksum>,
        /// At most this many bytes per second in all (K, M, G suffixes: 512K, 20M)
        #[arg(long, value_name = "BYTES_PER_SEC", value_parser = crate::rate::parse_rate)]
        limit_rate: Option<u64>,
        /// Start again: abort an earlier unfinished upload of the same file
        #[arg(long)]
        no_resume: bool,
    },

    /// List your projects, a project's boxes (in order), or a box's assets
    #[command(
        after_help = "Examples:\n  assetbox ls\n  assetbox ls 01JPROJECT…\n  assetbox ls --box 01JBOX…\n  assetbox ls --json\n\n--json prints every item of the list (all pages) as a JSON array.\nExit codes: 0 done, 1 network, 3 not logged in, 4 no such project or box."
    )]
    Ls {
        /// A project: list its boxes
        #[arg(value_name = "PROJECT_ID")]
        project: Option<String>,
        /// A box: list its assets (id, type, status, size, name)
        #[arg(long = "box", value_name = "BOX_ID", conflicts_with = "project")]
        box_id: Option<String>,
        /// The API's JSON instead of a table
        #[arg(long)]
        json: bool,
    },

    /// Download a project's storyboard (.docx)
    #[command(
        after_help = "Examples:\n  assetbox export 01JPROJECT…                  # writes <project name>.docx\n  assetbox export 01JPROJECT… -o board.docx\n\nExit codes: 0 done, 1 network, 3 not logged in, 4 no such project."
    )]
    Export {
        #[arg(value_name = "PROJECT_ID")]
        project: String,
        /// Where to write it [default: <project name>.docx]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn upload_reads_its_flags() {
        let cli = Cli::try_parse_from([
            "assetbox",
            "upload",
            "a.mp4",
            "b.png",
            "--box",
            "01B",
            "--parallel",
            "2",
            "--checksum",
            "crc32c",
            "--limit-rate",
            "1M",
            "--api",
            "http://x:1",
        ])
        .unwrap();
        let Command::Upload {
            files,
            parallel,
            checksum,
            limit_rate,
            ..
        } = cli.command
        else {
            panic!("an upload");
        };
        assert_eq!(files.len(), 2);
        assert_eq!(parallel, 2);
        assert_eq!(checksum, Some(Checksum::Crc32c));
        assert_eq!(limit_rate, Some(1 << 20));
        assert_eq!(cli.api.as_deref(), Some("http://x:1"));
        assert!(
            Cli::try_parse_from(["assetbox", "upload", "a", "--box", "b", "--parallel", "0"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["assetbox", "ls", "P", "--box", "B"]).is_err());
    }
}
