//! The storyboard document: a title, then a table with one row per box in
//! order (position, shot name, headliner thumbnail, prompt, model). Pure:
//! bytes in, bytes out, so it is tested without AWS.

use std::io::Cursor;

use docx_rs::{Docx, Paragraph, Pic, Run, Table, TableCell, TableLayoutType, TableRow, WidthType};
use image::{ImageFormat, ImageReader, Limits};

/// Thumbnails are scaled to fit this box (pixels) before embedding.
pub const THUMBNAIL_PX: u32 = 320;
/// Shown at most this wide in the document (EMU: 914400 per inch).
const PICTURE_WIDTH_EMU: u32 = 2 * 914_400;
/// Decoding refuses images that would need more memory than this.
const DECODE_MAX_ALLOC: u64 = 192 * 1024 * 1024;

/// A headliner picture, ready to embed.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// What stands in the picture cell.
#[derive(Debug, Clone)]
pub enum Picture {
    Image(Thumbnail),
    /// Why there is no picture (no headliner, a video without a thumbnail yet,
    /// an image that could not be read).
    Note(String),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub picture: Picture,
    pub prompt: Option<String>,
    pub model: Option<String>,
}

/// A PNG thumbnail of an image (PNG, JPEG, WebP or GIF), at most
/// [`THUMBNAIL_PX`] on its longer side; `None` when it cannot be decoded
/// within the memory limit.
pub fn thumbnail(bytes: &[u8]) -> Option<Thumbnail> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(DECODE_MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode().ok()?;
    let small = if image.width() > THUMBNAIL_PX || image.height() > THUMBNAIL_PX {
        image.thumbnail(THUMBNAIL_PX, THUMBNAIL_PX)
    } else {
        image
    };
    let mut png = Cursor::new(Vec::new());
    small.write_to(&mut png, ImageFormat::Png).ok()?;
    Some(Thumbnail {
        png: png.into_inner(),
        width: small.width(),
        height: small.height(),
    })
}

/// Text as XML 1.0 allows it: control characters other than tab and line
/// breaks would make Word refuse the whole document.
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

fn text_cell(text: &str, width: usize, bold: bool) -> TableCell {
    let mut run = Run::new().add_text(xml_safe(text));
    if bold {
        run = run.bold();
    }
    TableCell::new()
        .width(width, WidthType::Dxa)
        .add_paragraph(Paragraph::new().add_run(run))
}

/// Column widths in twentieths of a point (a 6.5-inch text width).
const COLUMNS: [usize; 5] = [500, 1800, 3000, 2900, 1160];

/// The .docx bytes of a storyboard.
pub fn build(title: &str, rows: &[Row]) -> Result<Vec<u8>, String> {
    let header = TableRow::new(
        ["#", "Shot", "Headliner", "Prompt", "Model"]
            .iter()
            .zip(COLUMNS)
            .map(|(h, w)| text_cell(h, w, true))
            .collect(),
    );
    let mut table_rows = vec![header];
    for (index, row) in rows.iter().enumerate() {
        let picture = match &row.picture {
            Picture::Image(t) => {
                let width = PICTURE_WIDTH_EMU;
                let height =
                    (PICTURE_WIDTH_EMU as u64 * t.height as u64 / t.width.max(1) as u64) as u32;
                let pic =
                    Pic::new_with_dimensions(t.png.clone(), t.width, t.height).size(width, height);
                TableCell::new()
                    .width(COLUMNS[2], WidthType::Dxa)
                    .add_paragraph(Paragraph::new().add_run(Run::new().add_image(pic)))
            }
            Picture::Note(note) => text_cell(note, COLUMNS[2], false),
        };
        table_rows.push(TableRow::new(vec![
            text_cell(&(index + 1).to_string(), COLUMNS[0], false),
            text_cell(&row.name, COLUMNS[1], false),
            picture,
            text_cell(row.prompt.as_deref().unwrap_or(""), COLUMNS[3], false),
            text_cell(row.model.as_deref().unwrap_or(""), COLUMNS[4], false),
        ]));
    }
    let doc = Docx::new()
        .add_paragraph(Paragraph::new().add_run(Run::new().add_text(title).bold().size(36)))
        .add_table(
            Table::new(table_rows)
                .set_grid(COLUMNS.to_vec())
                .layout(TableLayoutType::Fixed),
        );
    let mut out = Cursor::new(Vec::new());
    doc.pack(&mut out).map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn part(docx: &[u8], name: &str) -> String {
        let mut archive = zip::ZipArchive::new(Cursor::new(docx)).unwrap();
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn thumbnails_fit_the_box_and_keep_the_aspect() {
        let t = thumbnail(&png(1000, 500)).unwrap();
        assert_eq!((t.width, t.height), (THUMBNAIL_PX, THUMBNAIL_PX / 2));
        assert!(t.png.starts_with(&[0x89, b'P', b'N', b'G']));
        let small = thumbnail(&png(40, 30)).unwrap();
        assert_eq!((small.width, small.height), (40, 30));
        assert!(thumbnail(b"MZ\x90\x00 not an image").is_none());
    }

    #[test]
    fn one_row_per_box_with_names_prompts_and_an_embedded_picture() {
        let rows = vec![
            Row {
                name: "Opening <wide> & \"dusk\"".into(),
                picture: Picture::Image(thumbnail(&png(64, 48)).unwrap()),
                prompt: Some("a fox at dusk\u{0b}\u{1b}".into()),
                model: Some("flux-pro".into()),
            },
            Row {
                name: "Close-up".into(),
                picture: Picture::Note("no headliner".into()),
                prompt: None,
                model: None,
            },
        ];
        let docx = build("Film storyboard", &rows).unwrap();
        let document = part(&docx, "word/document.xml");
        let rows = document.matches("<w:tr>").count() + document.matches("<w:tr ").count();
        assert_eq!(rows, 3, "header + 2 rows");
        assert!(document.contains("Opening &lt;wide&gt; &amp;"));
        assert!(document.contains("Close-up"));
        assert!(document.contains("a fox at dusk"));
        assert!(!document.contains('\u{0b}') && !document.contains('\u{1b}'));
        assert!(document.contains("flux-pro"));
        assert!(document.contains("no headliner"));
        assert!(document.contains("<a:blip"), "an embedded picture");
        let mut archive = zip::ZipArchive::new(Cursor::new(&docx)).unwrap();
        let media: Vec<String> = archive
            .file_names()
            .filter(|n| n.starts_with("word/media/") && !n.ends_with('/'))
            .map(str::to_owned)
            .collect();
        assert_eq!(media.len(), 1, "{media:?}");
        let mut bytes = Vec::new();
        archive
            .by_name(&media[0])
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert!(bytes.starts_with(&[0x89, b'P', b'N', b'G']));
        // The reader of the same crate opens it.
        assert!(docx_rs::read_docx(&docx).is_ok());
    }
}
