//! `ingest`: a 24 MP JPEG to its 512 px thumbnail, time and peak RSS, in a
//! fresh process per run (so RSS is the thumbnail's alone), side by side
//! with `vipsthumbnail` (Debian `libvips-tools`) on the same file when it is
//! installed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use crate::median;

const WIDTH: u32 = 6000;
const HEIGHT: u32 = 4000;

/// A photo-like 24 MP JPEG (gradients and texture, so it compresses like one).
fn write_photo(path: &Path) -> anyhow::Result<u64> {
    let picture = image::RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let texture = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104729)) % 31) as u8;
        image::Rgb([
            (x * 200 / WIDTH) as u8 + texture,
            (y * 200 / HEIGHT) as u8 + texture,
            ((x + y) % 200) as u8,
        ])
    });
    picture.save_with_format(path, image::ImageFormat::Jpeg)?;
    Ok(std::fs::metadata(path)?.len())
}

/// Peak RSS of this process so far, in KiB (`VmHWM`).
fn own_peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The child: one thumbnail, then `<ms> <peak KiB>` on stdout.
pub fn child(path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let bytes = std::fs::read(path)?;
    let facts = ingest_object::describe_image(&bytes).map_err(anyhow::Error::msg)?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(facts.thumbnail_width == 512, "unexpected thumbnail");
    println!("{ms:.1} {}", own_peak_rss_kib());
    Ok(())
}

/// `(ms, peak MB)` medians of `runs` runs of a command that reports them.
fn medians(mut samples: Vec<(f64, f64)>) -> (f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|s| s.0).collect();
    let mut mb: Vec<f64> = samples.drain(..).map(|s| s.1).collect();
    (median(&mut ms), median(&mut mb))
}

pub fn run(runs: usize) -> anyhow::Result<()> {
    println!("\n== ingest: 24 MP JPEG → 512 px thumbnail (medians of {runs}, a process per run)");
    let dir = std::env::temp_dir().join(format!("assetbox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let photo = dir.join("photo-24mp.jpg");
    let size = write_photo(&photo)?;
    println!(
        "ingest    source: {WIDTH}x{HEIGHT} JPEG, {:.1} MB",
        size as f64 / 1e6
    );

    let me = std::env::current_exe()?;
    let mut ours = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&me).arg("ingest-child").arg(&photo).output()?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)?;
        let mut parts = text.split_whitespace();
        let ms: f64 = parts.next().context("ms")?.parse()?;
        let kib: f64 = parts.next().context("rss")?.parse()?;
        ours.push((ms, kib / 1024.0));
    }
    let (ours_ms, ours_mb) = medians(ours);
    println!(
        "ingest    ours (describe_image: shrink-on-load decode + orient + resize + JPEG): {ours_ms:.0} ms, peak RSS {ours_mb:.0} MB"
    );

    let vips = Command::new("vipsthumbnail").arg("--help").output();
    if vips.is_err() {
        println!(
            "ingest    vipsthumbnail not installed (apt-get install libvips-tools) — no comparison"
        );
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let thumb = dir.join("vips-thumb.jpg");
        let started = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg("vipsthumbnail")
            .arg(&photo)
            .args(["-s", "512", "-o"])
            .arg(&thumb)
            .output()?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kib: f64 = String::from_utf8(out.stderr)?
            .lines()
            .last()
            .context("rss")?
            .trim()
            .parse()?;
        theirs.push((ms, kib / 1024.0));
    }
    let (vips_ms, vips_mb) = medians(theirs);
    println!(
        "ingest    vipsthumbnail -s 512 (shrink-on-load): {vips_ms:.0} ms, peak RSS {vips_mb:.0} MB"
    );
    println!(
        "ingest    ratio ours / vips: time {:.2}x, peak RSS {:.2}x",
        ours_ms / vips_ms,
        ours_mb / vips_mb
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
