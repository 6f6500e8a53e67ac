//! `export`: the CPU side of the storyboard export and of small uploads,
//! without AWS I/O — scaling a headliner to its thumbnail (JPEG and PNG
//! originals), building the .docx for projects of 20 and 100 boxes, and
//! reading a small upload's type from its bytes.

use std::io::Cursor;
use std::time::Instant;

use project_export::storyboard::{self, Picture, Row};

use crate::median;

fn photo(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// Median milliseconds of `runs` calls.
fn time_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut samples)
}

pub fn run(runs: usize) -> anyhow::Result<()> {
    println!("\n== export and small uploads (CPU only, medians of {runs})");
    for (label, format) in [
        ("JPEG", image::ImageFormat::Jpeg),
        ("PNG", image::ImageFormat::Png),
    ] {
        let original = photo(1920, 1080, format);
        let ms = time_ms(runs, || {
            storyboard::thumbnail(&original).expect("decodes");
        });
        println!(
            "thumbnail of a 1920x1080 {label} ({} KB): {ms:.1} ms",
            original.len() / 1024
        );
    }
    let thumb =
        storyboard::thumbnail(&photo(1920, 1080, image::ImageFormat::Jpeg)).expect("decodes");
    for boxes in [20usize, 100] {
        let rows: Vec<Row> = (0..boxes)
            .map(|i| Row {
                name: format!("Shot {i}"),
                picture: if i % 5 == 4 {
                    Picture::Note("no headliner".into())
                } else {
                    Picture::Image(thumb.clone())
                },
                prompt: Some(format!("a fox at dusk, take {i}, golden light")),
                model: Some("flux-pro".into()),
            })
            .collect();
        let mut size = 0;
        let ms = time_ms(runs, || {
            size = storyboard::build("Film — storyboard", &rows)
                .expect("builds")
                .len();
        });
        println!(
            "storyboard of {boxes} boxes ({} pictures): {ms:.1} ms, {} KB",
            boxes - boxes / 5,
            size / 1024
        );
    }
    let mp4_head = {
        let mut head = vec![0, 0, 0, 0x18];
        head.extend_from_slice(b"ftypisom\x00\x00\x02\x00isomiso2");
        head.resize(4096, 0);
        head
    };
    let jpeg = photo(640, 480, image::ImageFormat::Jpeg);
    let mut sniff_ns: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..10_000 {
                std::hint::black_box(infer::get(std::hint::black_box(&jpeg)));
                std::hint::black_box(infer::get(std::hint::black_box(&mp4_head)));
            }
            started.elapsed().as_secs_f64() * 1e9 / 20_000.0
        })
        .collect();
    println!(
        "type from the bytes (infer, JPEG and MP4 heads): {:.0} ns per file",
        median(&mut sniff_ns)
    );
    Ok(())
}
