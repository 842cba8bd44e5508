//! `gatewayd bench`: the speed figures of the README, measured here and now.
//! Speed targets live here, not in timed tests: machines are shared and noisy,
//! so each figure that has a goal is compared with a reference measured in the
//! same run and reported as a ratio.
//!
//! - `devices`: OSDP card read → output at the PD, plate push → barrier coil,
//!   through the whole gateway with the real peers.
//! - `decisions`: access decision latency with a large roster.
//! - `journal`: durable appends per second.
//! - `faces`: detect + align + embed per frame against a Python OpenCV reference.
//! - `accuracy`: LFW verification accuracy, TAR at FAR (needs ../shared/data).
//! - `rss`: memory with 100k templates and 4 cameras.
//! - `plates`: plate reading exact-match rate (needs ../shared/data).
//! - `gallery`: 1:N search time and recall at 100k and 1M templates.
//! - `uplink`: QoS 1 messages per second to a local mosquitto against a paho-mqtt
//!   publisher, and the time to drain a large backlog.
//! - `alarms`: sensor change → alarm on MQTT while a backlog is being forwarded.
//! - `console`: a card read to the browser's live feed, and an event search.

mod accuracy;
mod alarms;
mod console;
mod decisions;
pub mod devices;
pub mod faces;
mod footprint;
mod gallery;
mod identify;
mod journal;
mod plates;
mod uplink;

use anyhow::Result;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Run only these sections (rss, decisions, journal, uplink, drain, alarms,
    /// console, osdp, plate, faces, lfw, identify, deepface, gallery, plates); default: all.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Roster size for the decision benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub persons: usize,
    /// Messages for the uplink comparison with paho-mqtt.
    #[arg(long, default_value_t = 50_000)]
    pub messages: usize,
    /// Backlog size for the drain benchmark.
    #[arg(long, default_value_t = 180_000)]
    pub backlog: usize,
    /// Journal records for the console's search benchmark.
    #[arg(long, default_value_t = 300_000)]
    pub search_records: usize,
    /// Card reads for the OSDP latency benchmark.
    #[arg(long, default_value_t = 1_000)]
    pub reads: usize,
    /// Plate pushes for the plate → barrier benchmark.
    #[arg(long, default_value_t = 300)]
    pub pushes: usize,
    /// The Python with paho-mqtt for the reference publisher (default: .venv/bin/python, then python3).
    #[arg(long)]
    pub python: Option<std::path::PathBuf>,
    /// The shared test data (LFW, plates).
    #[arg(long, default_value = "../shared/data")]
    pub data: std::path::PathBuf,
    /// Frames timed by the face speed benchmark (each side).
    #[arg(long, default_value_t = 30)]
    pub frames: usize,
    /// Gallery sizes for the search benchmark.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub gallery: Vec<usize>,
    /// Face templates in the store of the memory benchmark's daemon.
    #[arg(long, default_value_t = 100_000)]
    pub rss_templates: usize,
}

impl BenchArgs {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

/// p50/p99/max of a histogram of microseconds, as printed.
pub(crate) fn percentiles(h: &hdrhistogram::Histogram<u64>) -> String {
    format!(
        "p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (n = {})",
        h.value_at_quantile(0.50) as f64,
        h.value_at_quantile(0.99) as f64,
        h.max() as f64,
        h.len()
    )
}

pub async fn run(args: BenchArgs) -> Result<()> {
    println!(
        "gatewayd bench ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if args.wants("rss") {
        footprint::run(args.rss_templates, 20).await?;
    }
    if args.wants("decisions") {
        decisions::run(args.persons)?;
    }
    if args.wants("journal") {
        journal::run().await?;
    }
    if args.wants("uplink") {
        uplink::compare_with_paho(args.messages, args.python.clone()).await?;
    }
    if args.wants("drain") {
        uplink::drain(args.backlog).await?;
    }
    if args.wants("alarms") {
        alarms::run().await?;
    }
    if args.wants("console") {
        console::run(300, args.search_records).await?;
    }
    if args.wants("osdp") {
        devices::osdp(args.reads).await?;
    }
    if args.wants("plate") {
        devices::plate(args.pushes).await?;
    }
    if args.wants("faces") {
        faces::run(args.frames, args.python.clone())?;
    }
    if args.wants("identify") {
        identify::run(&args.data, 1e-3)?;
    }
    if args.wants("lfw") {
        accuracy::lfw(&args.data)?;
    }
    if args.wants("deepface") {
        accuracy::deepface(&args.data)?;
    }
    if args.wants("plates") {
        plates::run(&args.data)?;
    }
    if args.wants("gallery") {
        gallery::run(&args.gallery, 400)?;
    }
    Ok(())
}
