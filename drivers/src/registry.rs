//! The registry of drivers: [`DriverConfig`], the serde enum tagged by `driver`
//! with one variant per driver's config, and what dispatches to each (`name`,
//! `validate`, `build`). Adding a driver means a variant here and nothing in the
//! driver context (`driver`), which every driver imports.

use serde::Deserialize;
use std::path::Path;

use crate::camera::CameraConfig;
use crate::driver::{BuildError, ConfigProblem, DriverContext, DriverTask};
use crate::llrp::LlrpConfig;
use crate::lpr_http::LprHttpConfig;
use crate::modbus::ModbusConfig;
use crate::osdp::OsdpConfig;
use crate::sim::SimConfig;

/// The `driver`-specific part of a `[[devices]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "driver", rename_all = "kebab-case")]
pub enum DriverConfig {
    /// Simulated device for the demo estate and tests.
    Sim(SimConfig),
    /// Card reader or door panel on an RS-485 bus (OSDP, secure channel).
    Osdp(OsdpConfig),
    /// Barrier gate, turnstile or sensor panel over Modbus TCP or RTU.
    Modbus(ModbusConfig),
    /// Plate camera pushing its reads over HTTP.
    LprHttp(LprHttpConfig),
    /// UHF RFID reader (e-bike tags) over LLRP.
    Llrp(LlrpConfig),
    /// IP camera, webcam or video file (frames for the face matcher).
    Camera(CameraConfig),
}

impl DriverConfig {
    /// The name in `driver = "..."`.
    pub fn name(&self) -> &'static str {
        match self {
            DriverConfig::Sim(_) => "sim",
            DriverConfig::Osdp(_) => "osdp",
            DriverConfig::Modbus(_) => "modbus",
            DriverConfig::LprHttp(_) => "lpr-http",
            DriverConfig::Llrp(_) => "llrp",
            DriverConfig::Camera(_) => "camera",
        }
    }

    /// Checks what serde cannot: files that must exist, ranges, combinations.
    /// Each problem names the key it is about. Relative paths are relative to
    /// `config_dir`, the folder of the config file.
    pub fn validate(&self, config_dir: &Path) -> Vec<ConfigProblem> {
        match self {
            DriverConfig::Sim(c) => c.validate(),
            DriverConfig::Osdp(c) => c.validate(config_dir),
            DriverConfig::Modbus(c) => c.validate(),
            DriverConfig::LprHttp(c) => c.validate(config_dir),
            DriverConfig::Llrp(c) => c.validate(),
            DriverConfig::Camera(c) => c.validate(config_dir),
        }
    }

    /// Builds the driver's task. Fails only on a configuration that cannot work;
    /// a device that is absent at start is not an error (the task retries).
    pub fn build(&self, ctx: DriverContext) -> Result<DriverTask, BuildError> {
        match self {
            DriverConfig::Sim(c) => c.build(ctx),
            DriverConfig::Osdp(c) => c.build(ctx),
            DriverConfig::Modbus(c) => c.build(ctx),
            DriverConfig::LprHttp(c) => c.build(ctx),
            DriverConfig::Llrp(c) => c.build(ctx),
            DriverConfig::Camera(c) => c.build(ctx),
        }
    }
}
