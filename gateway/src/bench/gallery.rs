//! Gallery search: top-1 time for 100k and 1M templates, and the approximate
//! index's recall@1 against exact search. The templates are synthetic: random
//! unit identities, and queries that are noisy views of an enrolled identity
//! (cosine about 0.6 to it, like a new photo of an enrolled person).

use anyhow::Result;
use models::gallery::sketch::SplitMix;
use models::{Gallery, GalleryOptions};
use std::time::Instant;

fn unit(r: &mut SplitMix, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| r.normal()).collect();
    models::face::normalize(&mut v);
    v
}

pub fn run(sizes: &[usize], queries: usize) -> Result<()> {
    println!("\n== gallery: 1:N search, top-1 (synthetic 128-d templates)");
    let dim = models::face::DIM;
    for &n in sizes {
        let mut r = SplitMix(n as u64);
        let mut data = Vec::with_capacity(n * dim);
        for _ in 0..n {
            data.extend(unit(&mut r, dim));
        }
        let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        let t = Instant::now();
        let mut g = Gallery::new(dim, GalleryOptions::default());
        g.extend(
            names
                .iter()
                .zip(data.chunks_exact(dim))
                .map(|(p, e)| (p.as_str(), e)),
        );
        let build = t.elapsed();
        // Queries: a noisy view of an enrolled template (cosine ~0.6).
        let qs: Vec<Vec<f32>> = (0..queries)
            .map(|_| {
                let i = (r.next_u64() % n as u64) as usize;
                let mut q: Vec<f32> = data[i * dim..(i + 1) * dim]
                    .iter()
                    .map(|x| x + 0.118 * r.normal())
                    .collect();
                models::face::normalize(&mut q);
                q
            })
            .collect();
        let mut times = Vec::with_capacity(queries);
        let mut answers = Vec::with_capacity(queries);
        for q in &qs {
            let t = Instant::now();
            let hits = g.search(q, 2);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            answers.push(hits.first().map(|h| h.person.clone()));
        }
        let mut exact_ms = Vec::with_capacity(queries);
        let mut agree = 0;
        for (q, a) in qs.iter().zip(&answers) {
            let t = Instant::now();
            let e = g.search_exact(q, 1);
            exact_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            if e.first().map(|h| h.person.clone()) == *a {
                agree += 1;
            }
        }
        times.sort_by(f64::total_cmp);
        exact_ms.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let emean = exact_ms.iter().sum::<f64>() / exact_ms.len() as f64;
        println!(
            "{n:>8} templates ({}; built in {:.1} s): top-1 mean {mean:.2} ms, p99 {:.2} ms; exact scan mean {emean:.2} ms; recall@1 vs exact {:.2}% ({agree}/{queries})",
            if g.is_indexed() { "sketch index" } else { "exact SIMD scan" },
            build.as_secs_f64(),
            times[(times.len() * 99 / 100).min(times.len() - 1)],
            agree as f64 * 100.0 / queries as f64
        );
    }
    println!("goals: 100k <= 2 ms, 1M <= 10 ms, recall@1 >= 99.5%");
    Ok(())
}
